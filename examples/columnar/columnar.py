#!/usr/bin/python3
"""A columnar analysis that tags jets with a ParticleNet-style EdgeConv network, one request per
chunk of events, run three ways with the same scores: locally (the kernel in this process, the
transmitter's CPU fallback), over MPI (mpi4py: receiver ranks and transmitter ranks) and over
KServe v2 (an offload-serve it starts, or one given by --connect). README.md has the commands.

Events are awkward-style columns built with numpy alone: jets per event and particles per jet
as offsets arrays, particle pT, eta, phi as flat arrays. Per chunk the analysis computes each
particle's features relative to its jet (deta, dphi, log pT, log E), orders a jet's particles by
pT, pads every jet to 50 particles with zeros (longer jets clipped: ak.pad_none(..., 50,
clip=True) then ak.fill_none(0), as coffea's Triton wrapper is fed) with a mask of the real
particles, sends one request for the chunk's jets, and scatters the scores back to the events
(jagged: a list of jet scores per event).

  columnar.py --mode local  [--events N] [--chunk-events C] [--save FILE.npy]
  mpiexec -np 3 columnar.py --mode mpi    [--receivers R] [--compare FILE.npy]
  columnar.py --mode kserve [--connect HOST:PORT] [--compare FILE.npy]
"""
import argparse
import collections
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
MAX_PARTICLES = 50  # the EdgeConv kernel's padding (examples/edgeconv/edgeconv.hpp)
FEATURES = 4
CLASSES = 2


class UsageError(Exception):
    """Bad input: printed as 'columnar.py: error: ...', exit status 2."""


# ---------------------------------------------------------------------------------------------
# The events: awkward-style columns (offsets + flat contents), numpy only.


def make_chunk(seed, index, n_events):
    """Chunk `index` of a synthetic data set, the same whichever rank or mode reads it: events with
    0..10 jets (Poisson, mean 3), each jet with 1..~150 particles (mean 33: about one jet in eight
    has more than 50), particles uniform in a cone of radius 0.8 around the jet axis, the jet's pT
    shared among them. Particles are stored in no particular order, as an unsorted file would
    have them. Returns a dict of columns:
      jet_offsets int64[n_events + 1], jet_pt/jet_eta/jet_phi float32[jets],
      part_offsets int64[jets + 1],    part_pt/part_eta/part_phi float32[particles]."""
    rng = np.random.default_rng([seed, index])
    njets = np.minimum(rng.poisson(3.0, n_events), 10)
    jet_offsets = np.concatenate([[0], np.cumsum(njets)]).astype(np.int64)
    jets = int(jet_offsets[-1])
    jet_pt = 30.0 + rng.exponential(70.0, jets)
    jet_eta = rng.uniform(-2.4, 2.4, jets)
    jet_phi = rng.uniform(-np.pi, np.pi, jets)
    nparts = 1 + rng.gamma(4.0, 8.0, jets).astype(np.int64)
    part_offsets = np.concatenate([[0], np.cumsum(nparts)]).astype(np.int64)
    jet_of = np.repeat(np.arange(jets), nparts)
    r = 0.8 * np.sqrt(rng.uniform(size=len(jet_of)))
    a = rng.uniform(-np.pi, np.pi, len(jet_of))
    share = rng.exponential(1.0, len(jet_of))
    total = np.add.reduceat(share, part_offsets[:-1]) if jets else np.zeros(0)
    return {
        "jet_offsets": jet_offsets,
        "jet_pt": jet_pt.astype(np.float32),
        "jet_eta": jet_eta.astype(np.float32),
        "jet_phi": jet_phi.astype(np.float32),
        "part_offsets": part_offsets,
        "part_pt": (jet_pt[jet_of] * share / total[jet_of]).astype(np.float32),
        "part_eta": (jet_eta[jet_of] + r * np.cos(a)).astype(np.float32),
        "part_phi": wrap_phi(jet_phi[jet_of] + r * np.sin(a)).astype(np.float32),
    }


def wrap_phi(phi):
    return (phi + np.pi) % (2 * np.pi) - np.pi


def particle_features(chunk):
    """Per particle, relative to its jet: deta, dphi, log pT, log E (GeV; massless), ordered by
    pT within each jet (the hardest first, so that clipping keeps them). Returns float32[P, 4]."""
    offsets = chunk["part_offsets"]
    jet_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    pt, eta, phi = chunk["part_pt"], chunk["part_eta"], chunk["part_phi"]
    deta = eta - chunk["jet_eta"][jet_of]
    dphi = wrap_phi(phi - chunk["jet_phi"][jet_of])
    feats = np.stack([deta, dphi, np.log(pt), np.log(pt * np.cosh(eta))], axis=1).astype(np.float32)
    order = np.lexsort((-pt, jet_of))  # by jet, then pT descending
    return feats[order]


def pad_and_mask(feats, part_offsets, max_particles=MAX_PARTICLES):
    """Jagged particles -> dense: float32[jets, max, 4] zero-padded (clipped at max), the mask
    bool[jets, max] of real particles, and its sum per jet, int32[jets] (the kernel's "counts")."""
    jets = len(part_offsets) - 1
    n = np.diff(part_offsets)
    jet_of = np.repeat(np.arange(jets), n)
    slot = np.arange(len(feats)) - np.repeat(part_offsets[:-1], n)
    keep = slot < max_particles
    padded = np.zeros((jets, max_particles, FEATURES), np.float32)
    padded[jet_of[keep], slot[keep]] = feats[keep]
    mask = np.zeros((jets, max_particles), bool)
    mask[jet_of[keep], slot[keep]] = True
    return padded, mask, mask.sum(axis=1).astype(np.int32)


def per_event(values, jet_offsets):
    """Jagged -> a list per event (for printing)."""
    return [values[a:b].tolist() for a, b in zip(jet_offsets[:-1], jet_offsets[1:])]


def event_max(values, jet_offsets):
    """Columnar max over each event's jets (NaN for an event without jets)."""
    out = np.full(len(jet_offsets) - 1, np.nan, np.float32)
    has = np.diff(jet_offsets) > 0
    if has.any():
        out[has] = np.maximum.reduceat(values, jet_offsets[:-1][has])
    return out


# ---------------------------------------------------------------------------------------------
# The model: the EdgeConv kernel (a plugin) or its TorchScript twin (a model repository).


def find_build_dir():
    """The build tree the mpi_offload package was imported from (<build>/python/mpi_offload)."""
    import mpi_offload

    return pathlib.Path(mpi_offload.__file__).resolve().parent.parent.parent


def model_registry(args):
    """The kernel registry and the kernel's name: the EdgeConv plugin, or edgeconv_ts of a model
    repository (tests/models/make_repository.py)."""
    import mpi_offload as mo

    kernels = mo.KernelRegistry()
    if args.model_repository:
        kernels.add_model_repository(str(args.model_repository))
        name = "edgeconv_ts"
    else:
        kernels.load_plugin(str(args.plugin))
        name = "edgeconv"
    if name not in kernels:
        raise UsageError(f"{args.model_repository or args.plugin} has no kernel '{name}' (it has {kernels.names()})")
    return kernels, name


def request_inputs(kernel, padded, counts):
    """The request of one chunk. edgeconv: counts int32[jets]; edgeconv_ts's config has counts
    [-1, 1] (dims [1] under max_batch_size)."""
    return {"features": padded, "counts": counts if kernel == "edgeconv" else counts.reshape(-1, 1)}


# ---------------------------------------------------------------------------------------------
# The analysis loop: one request per chunk, up to --in-flight at once.


def analyse(tx, kernel, chunk_ids, args):
    """Reads, prepares and submits the chunks `chunk_ids`, collects their results in order.
    Returns {chunk: (jet_offsets, scores float32[jets, 2], jets clipped, particles)}, the
    per-request records, the wall time of the loop (seconds)."""
    out, records, pending = {}, [], collections.deque()

    def collect():
        i, chunk, clipped, prep, fut = pending.popleft()
        try:
            r = fut.result(timeout=args.timeout + 30)
        except Exception as e:  # RequestError, or a timeout of the wait
            raise RuntimeError(f"chunk {i}: the request failed: {type(e).__name__}: {e}") from e
        scores = r["scores"].reshape(-1, CLASSES)  # a view on the reply's bytes, no copy
        jets = int(chunk["jet_offsets"][-1])
        if len(scores) != jets:
            raise RuntimeError(f"chunk {i}: {len(scores)} scores for {jets} jets")
        out[i] = (chunk["jet_offsets"], scores, clipped, int(chunk["part_offsets"][-1]))
        records.append({"chunk": i, "latency": r.latency, "receiver": r.receiver, "fallback": r.fallback,
                        "remote_error": r.remote_error, "prepare": prep,
                        "round_trip": r.timing.round_trip if r.receiver >= 0 else float("nan")})

    start = time.perf_counter()
    for i in chunk_ids:
        t0 = time.perf_counter()
        chunk = make_chunk(args.seed, i, args.chunk_events)
        padded, mask, counts = pad_and_mask(particle_features(chunk), chunk["part_offsets"])
        clipped = int((np.diff(chunk["part_offsets"]) > MAX_PARTICLES).sum())
        fut = tx.submit(kernel, request_inputs(kernel, padded, counts))
        pending.append((i, chunk, clipped, time.perf_counter() - t0, fut))
        while len(pending) >= args.in_flight:
            collect()
    while pending:
        collect()
    return out, records, time.perf_counter() - start


def transmitter_options(args):
    return {"timeout": args.timeout, "credits": max(8, args.in_flight), "fallback_threads": args.threads}


# ---------------------------------------------------------------------------------------------
# The three modes.


def run_local(args):
    import mpi_offload as mo

    kernels, kernel = model_registry(args)
    rt = mo.Runtime(mpi=False)
    # No receiver at all: every request runs on the transmitter's CPU fallback, in this process.
    with mo.Transmitter(rt, kernels, mo.grpc_link([]), handshake_timeout=0.1, **transmitter_options(args)) as tx:
        results, records, wall = analyse(tx, kernel, range(args.chunks), args)
    rt.close()
    return results, records, wall, "local (the kernel in this process: the transmitter's CPU fallback)"


def find_serve(args):
    if args.serve:
        return args.serve
    env = os.environ.get("OFFLOAD_SERVE")
    if env:
        return pathlib.Path(env)
    guess = find_build_dir() / "apps" / "offload-serve"
    if guess.exists():
        return guess
    found = shutil.which("offload-serve")
    if found:
        return pathlib.Path(found)
    raise UsageError("no offload-serve: give --serve PATH (or --connect HOST:PORT to a running one)")


class Service:
    """offload-serve --kserve 127.0.0.1:0 with the model, on a free port; stopped with SIGTERM."""

    def __init__(self, args):
        serve = find_serve(args)
        self.dir = tempfile.TemporaryDirectory(prefix="columnar-")
        port_file = pathlib.Path(self.dir.name) / "port"
        self.log = open(pathlib.Path(self.dir.name) / "serve.log", "w+")
        model = ["--model-repository", str(args.model_repository)] if args.model_repository else \
            ["--plugin", str(args.plugin)]
        cmd = [str(serve), "--kserve", "127.0.0.1:0", "--port-file", str(port_file), "--backend", "cpu",
               "--receiver-threads", str(args.threads), *model]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None:
                raise RuntimeError(f"offload-serve exited {self.proc.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"offload-serve wrote no port in 60 s: {self.output()}")
            time.sleep(0.02)  # polling for the port file, not standing in for work
        self.address = f"127.0.0.1:{port_file.read_text().split()[0]}"

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read().strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.dir.cleanup()
        return rc


def run_kserve(args):
    import mpi_offload as mo

    if not mo.has_kserve:
        raise UsageError("mode kserve: this build of mpi_offload has no gRPC (mpi_offload.has_kserve is False)")
    kernels, kernel = model_registry(args)
    service = None if args.connect else Service(args)
    address = args.connect or service.address
    rt = mo.Runtime(mpi=False)
    try:
        with mo.Transmitter(rt, kernels, mo.kserve_link([address]), handshake_timeout=10.0,
                            **transmitter_options(args)) as tx:
            results, records, wall = analyse(tx, kernel, range(args.chunks), args)
            stages = tx.stats()["stages"]
    finally:
        rt.close()
        if service:
            rc = service.stop()
            if rc != 0:
                print(f"columnar: offload-serve exited {rc}: {service.output()}", file=sys.stderr)
    where = f"kserve (KServe v2 to {address}, {'given by --connect' if args.connect else 'offload-serve started here'})"
    return results, records, wall, where, stages


def run_mpi(args):
    from mpi4py import MPI  # initialises MPI with MPI_THREAD_MULTIPLE

    import mpi_offload as mo

    comm = MPI.COMM_WORLD
    rank, size, nrx = comm.rank, comm.size, args.receivers
    if size < nrx + 1:
        raise UsageError(f"mode mpi needs at least {nrx + 1} ranks ({nrx} receiver(s) and a transmitter), "
                         f"this job has {size}: mpiexec -np {nrx + 2} {sys.argv[0]} --mode mpi ...")
    is_rx = rank < nrx
    txcomm = comm.Split(0 if is_rx else 1, rank)  # the transmitters time their loop together
    kernels, kernel = model_registry(args)
    rt = mo.Runtime.adopt(comm)
    result = None
    try:
        if is_rx:
            rx = mo.Receiver(rt, kernels, mo.mpi_link(), peers=size - nrx, threads=args.threads, backend="cpu")
            stats = rx.wait()
            rx.close()
            result = ("rx", rank, {k: stats[k] for k in ("requests", "replies", "error_replies")})
        else:
            me, ntx = rank - nrx, size - nrx
            mine = range(me, args.chunks, ntx)  # chunk i on transmitter i mod ntx
            with mo.Transmitter(rt, kernels, mo.mpi_link(list(range(nrx))), **transmitter_options(args)) as tx:
                txcomm.Barrier()
                t0 = MPI.Wtime()
                results, records, _ = analyse(tx, kernel, mine, args)
                t1 = MPI.Wtime()
                stages = tx.stats()["stages"]
            result = ("tx", rank, (results, records, t0, t1, stages))
    except Exception as e:
        print(f"columnar: rank {rank}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        comm.Abort(1)
    rt.close()  # before mpi4py finalises MPI
    everything = comm.gather(result, root=0)
    txcomm.Free()
    if rank != 0:
        return None
    results, records, t0, t1, stages = {}, [], [], [], []
    rx_lines = []
    for kind, r, payload in everything:
        if kind == "rx":
            rx_lines.append(f"receiver rank {r}: {payload['requests']} requests, {payload['error_replies']} errors")
        else:
            results.update(payload[0])
            records += payload[1]
            t0.append(payload[2])
            t1.append(payload[3])
            stages.append(payload[4])
    where = (f"mpi ({size} ranks: {nrx} receiver(s), {size - nrx} transmitter(s); mpi4py, Runtime.adopt); "
             + "; ".join(rx_lines))
    return results, records, max(t1) - min(t0), where, stages[0] if len(stages) == 1 else None


# ---------------------------------------------------------------------------------------------
# The report.


def digest(scores):
    return hashlib.sha256(np.ascontiguousarray(scores, np.float32).tobytes()).hexdigest()[:16]


def report(args, results, records, wall, where, stages=None):
    missing = [i for i in range(args.chunks) if i not in results]
    if missing:
        raise RuntimeError(f"chunks without results: {missing}")
    scores = np.concatenate([results[i][1] for i in range(args.chunks)]) if args.chunks else np.zeros((0, 2))
    scores = np.asarray(scores, np.float32).reshape(-1, CLASSES)
    jets, clipped = len(scores), sum(results[i][2] for i in range(args.chunks))
    particles = sum(results[i][3] for i in range(args.chunks))
    events = args.chunks * args.chunk_events
    print(f"columnar: mode {where}")
    print(f"kernel {args.kernel_name} ({args.model_repository or args.plugin}); {events} events in {args.chunks} "
          f"chunks of {args.chunk_events}, {jets} jets ({clipped} clipped at {MAX_PARTICLES} particles), "
          f"{particles} particles; {args.in_flight} request(s) in flight, {args.threads} kernel thread(s)")
    remote = sum(1 for r in records if r["receiver"] >= 0)
    fallbacks = collections.Counter(r["fallback"] for r in records if r["receiver"] < 0)
    print(f"requests: {len(records)}, remote {remote}, local {len(records) - remote}"
          + (f" ({', '.join(f'{k} {v}' for k, v in sorted(fallbacks.items()))})" if fallbacks else ""))
    errors = {r["remote_error"] for r in records if r["remote_error"]}
    if errors:
        print(f"remote errors: {'; '.join(sorted(errors))}")
    # Scattered back to the events: per event, its jets' tagger scores (class 1).
    offsets0 = results[0][0] if args.chunks else np.zeros(1, np.int64)
    tag0 = np.asarray(results[0][1]).reshape(-1, CLASSES)[:, 1] if args.chunks else np.zeros(0)
    first = [[round(v, 4) for v in ev] for ev in per_event(tag0, offsets0)[:4]]
    best = np.concatenate([event_max(np.asarray(results[i][1]).reshape(-1, CLASSES)[:, 1], results[i][0])
                           for i in range(args.chunks)]) if args.chunks else np.zeros(0)
    tagged = int(np.nansum(best > args.cut)) if len(best) else 0
    print(f"scores: sha256 {digest(scores)} ({jets} jets x {CLASSES}), mean tagger score "
          f"{scores[:, 1].mean() if jets else float('nan'):.6f}; first events' jets {first}; "
          f"{tagged} of {events} events with a jet above {args.cut}")
    if args.save:
        np.save(args.save, scores)
        print(f"saved {args.save}")
    ok = True
    if args.compare:
        other = np.load(args.compare)
        if other.shape != scores.shape:
            raise UsageError(f"--compare {args.compare}: shape {other.shape}, these scores {scores.shape} "
                             "(another --events/--chunk-events/--seed?)")
        diff = float(np.abs(other.astype(np.float64) - scores).max()) if jets else 0.0
        print(f"compare: max |scores - {args.compare}| = {diff:.3e} over {jets} jets; digest there {digest(other)}")
        ok = ok and diff <= args.tolerance
    if args.reference:
        ok = check_reference(args, scores) and ok
    n = len(records)
    lat = np.array([r["latency"] for r in records]) * 1e3
    prep = np.array([r["prepare"] for r in records]) * 1e3
    print(f"throughput: {events / wall:.1f} events/s, {jets / wall:.1f} jets/s (wall {wall:.3f} s, "
          f"reading + padding + requests + scatter)")
    if n:
        print(f"latency per request (submit to result): median {np.median(lat):.2f} ms, p90 "
              f"{np.percentile(lat, 90):.2f} ms over {n} requests; reading + padding a chunk: median "
              f"{np.median(prep):.2f} ms")
    if stages and stages.get("kernel", {}).get("count"):
        k, rtt = stages["kernel"], stages["round_trip"]
        print(f"remote stages (the library's, log-histogram quantiles): round trip p50 {rtt['p50_s'] * 1e3:.2f} ms, "
              f"kernel p50 {k['p50_s'] * 1e3:.2f} ms")
    if args.mode != "local" and remote != n and not args.allow_fallback:
        print(f"FAIL: {n - remote} of {n} requests ran locally, not at a receiver (--allow-fallback accepts that)")
        ok = False
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"mode": args.mode, "events": events, "chunks": args.chunks, "chunk_events": args.chunk_events,
                       "jets": jets, "digest": digest(scores), "wall_s": wall, "events_per_s": events / wall,
                       "latency_ms": lat.tolist(), "remote": remote}, f)
    return ok


def check_reference(args, scores):
    """The first --reference jets against examples/edgeconv/reference.py (numpy, float64), fed
    from the jagged particles directly (no padding): checks the padding, mask and scatter."""
    sys.path.insert(0, str(HERE.parent / "edgeconv"))
    import reference

    layers = reference.weights()
    want, worst, i = args.reference, 0.0, 0
    for c in range(args.chunks):
        chunk = make_chunk(args.seed, c, args.chunk_events)
        feats, offsets = particle_features(chunk), chunk["part_offsets"]
        for j in range(len(offsets) - 1):
            if i >= want:
                break
            x = feats[offsets[j]:min(offsets[j + 1], offsets[j] + MAX_PARTICLES)].astype(np.float64)
            worst = max(worst, float(np.abs(reference.jet_scores(x, layers) - scores[i]).max()))
            i += 1
        if i >= want:
            break
    ok = worst <= 1e-5
    print(f"reference: max |scores - examples/edgeconv/reference.py| = {worst:.3e} over the first {i} jets "
          f"(unpadded, float64), tolerance 1e-05: {'ok' if ok else 'FAIL'}")
    return ok


# ---------------------------------------------------------------------------------------------


def positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {kind.__name__}") from None
        if v <= 0:
            raise argparse.ArgumentTypeError(f"{text}: must be > 0")
        return v

    return parse


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("local", "mpi", "kserve"), required=True,
                    help="local: the kernel in this process (CPU fallback); mpi: under mpiexec, ranks "
                         "0..R-1 receivers, the others transmitters; kserve: to offload-serve --kserve")
    ap.add_argument("--events", type=positive(int), default=2000, help="events in all (default 2000)")
    ap.add_argument("--chunk-events", type=positive(int), default=200,
                    help="events per chunk, one request each (default 200); --events must be a multiple")
    ap.add_argument("--seed", type=int, default=1, help="the data set's seed (default 1)")
    ap.add_argument("--plugin", type=pathlib.Path,
                    help="the EdgeConv kernel's plugin (examples/edgeconv: edgeconv_plugin.so); default "
                         "$EDGECONV_PLUGIN, else <build>/tests/example/build/edgeconv_plugin.so")
    ap.add_argument("--model-repository", type=pathlib.Path,
                    help="instead of the plugin: a model repository with edgeconv_ts, the same network in "
                         "TorchScript (tests/models/make_repository.py; at most 256 jets per request)")
    ap.add_argument("--in-flight", type=positive(int), default=2,
                    help="requests outstanding at once: the next chunk is read and padded meanwhile (default 2)")
    ap.add_argument("--threads", type=positive(int), default=1,
                    help="kernel threads: the fallback's (local), each receiver's (mpi, kserve started here)")
    ap.add_argument("--timeout", type=positive(float), default=60.0,
                    help="seconds a request may take at a receiver before it runs locally (default 60)")
    ap.add_argument("--receivers", type=positive(int), default=1, help="mpi: receiver ranks (default 1)")
    ap.add_argument("--connect", metavar="HOST:PORT", help="kserve: a running offload-serve --kserve with the model")
    ap.add_argument("--serve", type=pathlib.Path, help="kserve: the offload-serve to start (default $OFFLOAD_SERVE, "
                                                       "else the build tree's apps/offload-serve)")
    ap.add_argument("--save", metavar="FILE.npy", help="write the scores, float32[jets, 2]")
    ap.add_argument("--compare", metavar="FILE.npy", help="compare the scores with those --save wrote")
    ap.add_argument("--tolerance", type=float, default=0.0,
                    help="largest |difference| --compare accepts (default 0: the same bits)")
    ap.add_argument("--reference", type=int, default=0, metavar="JETS",
                    help="check the first JETS jets against examples/edgeconv/reference.py (numpy)")
    ap.add_argument("--cut", type=float, default=0.5, help="tagger score an event's best jet must pass (default 0.5)")
    ap.add_argument("--allow-fallback", action="store_true",
                    help="mpi, kserve: do not fail when requests ran locally (their scores are the same)")
    ap.add_argument("--json", metavar="FILE", help="write the measurements as JSON")
    ap.add_argument("--log-level", default="warn", choices=("trace", "debug", "info", "warn", "error", "off"))
    args = ap.parse_args(argv)
    if args.events % args.chunk_events:
        ap.error(f"--events {args.events} is not a multiple of --chunk-events {args.chunk_events}")
    args.chunks = args.events // args.chunk_events
    if args.connect and args.mode != "kserve":
        ap.error("--connect is for --mode kserve")
    if args.connect and (":" not in args.connect or not args.connect.rsplit(":", 1)[1].isdigit()):
        ap.error(f"--connect {args.connect}: expected HOST:PORT")
    if args.receivers != 1 and args.mode != "mpi":
        ap.error("--receivers is for --mode mpi")
    if args.plugin and args.model_repository:
        ap.error("--plugin or --model-repository, not both")
    if args.reference < 0:
        ap.error("--reference: a number of jets >= 0")
    for name in ("plugin", "model_repository", "serve"):
        p = getattr(args, name)
        if p is not None and not p.exists():
            ap.error(f"--{name.replace('_', '-')} {p}: no such file or directory")
    if args.compare and not os.path.isfile(args.compare):
        ap.error(f"--compare {args.compare}: no such file")
    return ap, args


def main(argv=None):
    ap, args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import mpi_offload as mo
    except ImportError as e:
        ap.error(f"cannot import mpi_offload ({e}): PYTHONPATH=<build>/python (docs/python.md)")
    mo.set_log_level(args.log_level)
    if not args.plugin and not args.model_repository:
        env = os.environ.get("EDGECONV_PLUGIN")
        guess = pathlib.Path(env) if env else find_build_dir() / "tests" / "example" / "build" / "edgeconv_plugin.so"
        if not guess.exists():
            ap.error(f"no EdgeConv plugin at {guess}: build it (tests/example/build.sh BUILD OUT, or ctest -R "
                     "example.build) and give --plugin OUT/build/edgeconv_plugin.so, or --model-repository DIR")
        args.plugin = guess
    args.kernel_name = "edgeconv_ts" if args.model_repository else "edgeconv"
    try:
        if args.mode == "local":
            out = run_local(args)
        elif args.mode == "kserve":
            out = run_kserve(args)
        else:
            out = run_mpi(args)
            if out is None:
                return 0  # a rank other than 0: rank 0 reports
        return 0 if report(args, *out) else 1
    except UsageError as e:
        ap.error(str(e))
    except (RuntimeError, ValueError, OSError) as e:
        print(f"columnar: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
