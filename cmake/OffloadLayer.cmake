# offload_add_layer(NAME EXPORT_NAME SOURCES... [PUBLIC deps...] [PRIVATE deps...]): one folder of
# the library as one static target. Public headers come from include/; private headers are
# included by their path from the project root ("src/transport/endpoint.hpp"), a build-only
# include directory, so nothing installed can reach them.
function(offload_add_layer name export_name)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "SOURCES;PUBLIC;PRIVATE")
  add_library(${name} STATIC ${arg_SOURCES})
  add_library(mpi_offload::${export_name} ALIAS ${name})
  set_target_properties(${name} PROPERTIES EXPORT_NAME ${export_name})
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_features(${name} PUBLIC cxx_std_20)
  target_link_libraries(${name} PUBLIC ${arg_PUBLIC} PRIVATE ${arg_PRIVATE} $<BUILD_INTERFACE:offload_warnings>)
endfunction()
