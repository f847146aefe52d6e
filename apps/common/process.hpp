#pragma once
// Small process facts and file helpers the apps share.

#include <string>

namespace offload::app {

/// CPU seconds (user + system) this process has used.
double process_cpu_seconds();
/// CPU seconds the calling thread has used.
double thread_cpu_seconds();
/// Writes `text` and a newline to `path` whole (a temporary file, then rename): a reader polling
/// for the file never sees part of it. Throws std::runtime_error naming the path.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace offload::app
