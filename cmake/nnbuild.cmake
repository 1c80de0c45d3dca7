# nnbuild.cmake: nn_add_model() and nn_add_model_executable().
#
# Included by nnbuildConfig.cmake (use `find_package(nnbuild CONFIG REQUIRED)`, not this file).
# The same options, with the same names in snake_case, are taken by the Bazel rule nn_model()
# in bazel/defs.bzl: TARGET, WEIGHTS, OPT_LEVEL, SHAPES, PREFIX, OPTIONS.
#
# Generation runs at build time, on the build machine, in one add_custom_command() per model:
#   <NNBUILD_PYTHON> -m nnbuild generate <model> -o <bin>/<target>.nnbuild/project ...
# Its outputs are known before it runs: the header, the network source, the app, the weights
# (and their .incbin assembler file), and one small wrapper source per hardware-interface family
# nnbuild has (<bin>/<target>.nnbuild/hal_<family>.c); a wrapper #includes the family's kernels
# when the model uses them and is an empty unit otherwise, so the source list does not depend
# on the model. It depends on the model file, on the options (a file rewritten at configure
# time only when they change) and on nnbuild's own sources and templates: editing any of them
# regenerates; nothing else does. With Ninja, files whose content did not change keep their
# timestamps, so only what really changed is recompiled; other generators recompile the model.
include_guard(GLOBAL)

set(_NNBUILD_CMAKE_DIR "${CMAKE_CURRENT_LIST_DIR}")

# _nnbuild_find_python()
#
# Sets the cache variable NNBUILD_PYTHON to a Python that imports nnbuild, and from it (see
# nnbuild_probe.py) nnbuild_VERSION, NNBUILD_TEMPLATES_DIR, NNBUILD_PACKAGE_DIR,
# NNBUILD_TARGETS, NNBUILD_HOST_TARGET and NNBUILD_C_FLAGS_<target>.
# When none works, a configure-time FATAL_ERROR names every candidate tried; without REQUIRED,
# find_package(nnbuild) reports nnbuild as not found with that message instead.
function(_nnbuild_find_python)
  set(NNBUILD_PYTHON "" CACHE FILEPATH "Python interpreter that has nnbuild installed")
  set(candidates)
  if(NNBUILD_PYTHON)
    set(candidates "${NNBUILD_PYTHON}")
  else()
    foreach(var IN ITEMS Python3_EXECUTABLE Python_EXECUTABLE PYTHON_EXECUTABLE)
      if(${var})
        list(APPEND candidates "${${var}}")
      endif()
    endforeach()
    if(DEFINED ENV{VIRTUAL_ENV})
      list(APPEND candidates "$ENV{VIRTUAL_ENV}/bin/python" "$ENV{VIRTUAL_ENV}/Scripts/python.exe")
    endif()
    foreach(name IN ITEMS python3 python)
      find_program(_nnbuild_python_${name} NAMES ${name} NO_CACHE NO_CMAKE_FIND_ROOT_PATH)
      if(_nnbuild_python_${name})
        list(APPEND candidates "${_nnbuild_python_${name}}")
      endif()
    endforeach()
  endif()
  set(tried)
  foreach(python IN LISTS candidates)
    if(NOT EXISTS "${python}")
      list(APPEND tried "${python} (no such file)")
      continue()
    endif()
    execute_process(COMMAND "${python}" "${_NNBUILD_CMAKE_DIR}/nnbuild_probe.py"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(rc EQUAL 0)
      set(NNBUILD_PYTHON "${python}" CACHE FILEPATH "Python interpreter that has nnbuild installed" FORCE)
      cmake_language(EVAL CODE "${out}")      # set(nnbuild_VERSION ... PARENT_SCOPE) and friends
      return()
    endif()
    string(STRIP "${err}" err)
    string(REGEX REPLACE ".*\n" "" err "${err}")          # the exception's last line
    list(APPEND tried "${python} (${err})")
  endforeach()
  if(NOT tried)
    set(tried "none: no python3 or python on PATH")
  endif()
  list(JOIN tried "\n    " tried)
  set(problem
    "nnbuild: no Python with nnbuild installed was found; tried:\n    ${tried}\n"
    "Install it (`pip install nnbuild`) into the Python you build with, or point CMake at the "
    "right interpreter: -DNNBUILD_PYTHON=/path/to/python")
  if(nnbuild_FIND_REQUIRED)
    message(FATAL_ERROR ${problem})
  endif()
  string(CONCAT problem ${problem})
  set(_nnbuild_not_found "${problem}" PARENT_SCOPE)   # find_package(nnbuild) without REQUIRED
endfunction()

# _nnbuild_tool_files(<out-var>)
#
# nnbuild's own Python sources and templates: a generation step depends on all of them, so a
# changed generator or kernel regenerates (collected once per configure).
function(_nnbuild_tool_files out)
  get_property(files GLOBAL PROPERTY _NNBUILD_TOOL_FILES)
  get_property(known GLOBAL PROPERTY _NNBUILD_TOOL_FILES SET)
  if(NOT known)
    file(GLOB_RECURSE files LIST_DIRECTORIES false
         "${NNBUILD_PACKAGE_DIR}/*.py" "${NNBUILD_TEMPLATES_DIR}/*")
    list(FILTER files EXCLUDE REGEX "/__pycache__/")
    list(SORT files)
    set_property(GLOBAL PROPERTY _NNBUILD_TOOL_FILES "${files}")
  endif()
  set(${out} "${files}" PARENT_SCOPE)
endfunction()

# _nnbuild_hal_families(<out-var>)
#
# Every hardware-interface family any nnbuild target provides (templates/hal/<target>/<f>.c).
function(_nnbuild_hal_families out)
  file(GLOB sources "${NNBUILD_TEMPLATES_DIR}/hal/*/*.c")
  set(families)
  foreach(source IN LISTS sources)
    get_filename_component(family "${source}" NAME_WE)
    list(APPEND families "${family}")
  endforeach()
  list(REMOVE_DUPLICATES families)
  list(SORT families)
  set(${out} "${families}" PARENT_SCOPE)
endfunction()

# _nnbuild_resolve_target(<out-var> <isa>)
#
# `host` means the machine being built for: when not cross-compiling, the best target for the
# build machine (NNBUILD_HOST_TARGET, resolved once at configure time so the compile flags and
# the generated kernels agree); when cross-compiling, the best target nnbuild has for
# CMAKE_SYSTEM_PROCESSOR (generic when it has none). Other names must be nnbuild targets.
function(_nnbuild_resolve_target out isa)
  if(isa STREQUAL "host")
    set(isa "${NNBUILD_HOST_TARGET}")
    if(CMAKE_CROSSCOMPILING)
      set(isa generic)
      string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" processor)
      if(processor MATCHES "^(aarch64|arm64)$" AND "arm64-neon" IN_LIST NNBUILD_TARGETS)
        set(isa arm64-neon)
      endif()
    endif()
  elseif(NOT isa IN_LIST NNBUILD_TARGETS)
    list(JOIN NNBUILD_TARGETS ", " known)
    message(FATAL_ERROR "nn_add_model: TARGET ${isa}: unknown target (targets: host, ${known})")
  endif()
  set(${out} "${isa}" PARENT_SCOPE)
endfunction()

# nn_add_model(<target> MODEL <file>
#              [TARGET <isa>] [WEIGHTS embed|file] [OPT_LEVEL 0|1|2]
#              [SHAPES <name>=<d>x<d>... ...] [PREFIX <c-prefix>] [OPTIONS <arg>...])
#
# Compiles an ONNX model (or an nnbuild intermediate file, .nnir.json) into the library target
# <target> (static unless BUILD_SHARED_LIBS), whose include directory carries `<prefix>.h`,
# the model's C API (see the header itself).
#
# Parameters
#   <target>   name of the library target; also the C prefix unless PREFIX is given.
#   MODEL      the model file (relative paths are relative to CMAKE_CURRENT_SOURCE_DIR).
#   TARGET     hardware interface: `host` (default; the machine being built for, also when
#              cross-compiling) or a target name that `nnbuild generate --help` lists.
#   WEIGHTS    `embed` (default): the weights are part of the library (an assembler .incbin,
#              the C compiler never sees them); `file`: loaded at run time, see
#              <prefix>_load_weights(); the blob's path is the target property
#              NNBUILD_WEIGHTS_FILE.
#   OPT_LEVEL  optimization pipeline, 0, 1 or 2 (default 2).
#   SHAPES     bindings of symbolic input dimensions, e.g. "images=1x3x320x320".
#   PREFIX     C prefix of every generated symbol (default: <target>); two models in one
#              binary need different prefixes.
#   OPTIONS    further `nnbuild generate` arguments, passed as they are.
#
# Notes
#   Unknown or valueless arguments are errors. The generated project lives in
#   ${CMAKE_CURRENT_BINARY_DIR}/<target>.nnbuild/project (target property NNBUILD_PROJECT_DIR);
#   the target also records NNBUILD_PREFIX and NNBUILD_WEIGHTS.
function(nn_add_model target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "MODEL;TARGET;WEIGHTS;OPT_LEVEL;PREFIX"
                        "SHAPES;OPTIONS")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nn_add_model(${target}): unknown arguments: ${ARG_UNPARSED_ARGUMENTS} "
            "(known: MODEL TARGET WEIGHTS OPT_LEVEL SHAPES PREFIX OPTIONS)")
  endif()
  if(ARG_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "nn_add_model(${target}): no value given for ${ARG_KEYWORDS_MISSING_VALUES}")
  endif()
  if(NOT ARG_MODEL)
    message(FATAL_ERROR "nn_add_model(${target}): MODEL <file> is required")
  endif()
  if(NOT NNBUILD_PYTHON)
    message(FATAL_ERROR "nn_add_model(${target}): call find_package(nnbuild CONFIG REQUIRED) first")
  endif()
  foreach(default IN ITEMS "TARGET;host" "WEIGHTS;embed" "OPT_LEVEL;2")
    list(GET default 0 key)
    list(GET default 1 value)
    if(NOT DEFINED ARG_${key})
      set(ARG_${key} "${value}")
    endif()
  endforeach()
  if(NOT ARG_WEIGHTS MATCHES "^(embed|file)$")
    message(FATAL_ERROR "nn_add_model(${target}): WEIGHTS ${ARG_WEIGHTS}: must be embed or file")
  endif()
  if(NOT ARG_OPT_LEVEL MATCHES "^[012]$")
    message(FATAL_ERROR "nn_add_model(${target}): OPT_LEVEL ${ARG_OPT_LEVEL}: must be 0, 1 or 2")
  endif()
  set(prefix "${target}")
  if(DEFINED ARG_PREFIX)
    set(prefix "${ARG_PREFIX}")
  endif()
  if(NOT prefix MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "nn_add_model(${target}): the C prefix `${prefix}` is not a C "
            "identifier; give one with PREFIX <c-prefix>")
  endif()
  _nnbuild_resolve_target(isa "${ARG_TARGET}")
  get_filename_component(model "${ARG_MODEL}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT EXISTS "${model}")
    message(FATAL_ERROR "nn_add_model(${target}): MODEL ${ARG_MODEL}: no such file (${model})")
  endif()

  set(base "${CMAKE_CURRENT_BINARY_DIR}/${target}.nnbuild")
  set(project "${base}/project")
  set(args generate "${model}" -o "${project}" --name "${prefix}" --target "${isa}"
           -O${ARG_OPT_LEVEL} --weights "${ARG_WEIGHTS}")
  foreach(shape IN LISTS ARG_SHAPES)
    list(APPEND args --shape "${shape}")
  endforeach()
  list(APPEND args ${ARG_OPTIONS})
  # What the generated files depend on besides the model and nnbuild: rewritten only when the
  # options change, so a changed nn_add_model() call regenerates whatever the generator.
  string(REPLACE ";" "\n" options_text "${args}")
  file(CONFIGURE OUTPUT "${base}/options.txt" CONTENT "${options_text}\n" @ONLY)

  _nnbuild_hal_families(families)
  list(JOIN families "," family_arg)
  set(wrappers)
  foreach(family IN LISTS families)
    list(APPEND wrappers "${base}/hal_${family}.c")
  endforeach()
  set(sources "${project}/src/${prefix}.c" ${wrappers})
  set(outputs "${project}/include/${prefix}.h" "${project}/app/main.c" "${project}/app/npy.h"
              "${project}/weights/${prefix}.bin")
  if(ARG_WEIGHTS STREQUAL "embed")
    list(APPEND sources "${project}/weights/${prefix}_weights.S")
  endif()
  # Ninja keeps an output whose timestamp did not move (restat) and rebuilds only what really
  # changed; other generators would rerun the step at every build, so it touches every output.
  set(touch OFF)
  if(NOT CMAKE_GENERATOR MATCHES "Ninja")
    set(touch ON)
  endif()
  _nnbuild_tool_files(tool_files)
  file(RELATIVE_PATH shown "${CMAKE_BINARY_DIR}" "${project}")
  add_custom_command(
    OUTPUT "${base}/generated.stamp" ${sources} ${outputs}
    COMMAND "${CMAKE_COMMAND}" "-DNNBUILD_BASE=${base}" -DNNBUILD_STEP=prepare
            -P "${_NNBUILD_CMAKE_DIR}/nnbuild_hal_wrappers.cmake"
    COMMAND "${NNBUILD_PYTHON}" -m nnbuild ${args}
    COMMAND "${CMAKE_COMMAND}" "-DNNBUILD_BASE=${base}" -DNNBUILD_STEP=wrappers
            "-DNNBUILD_FAMILIES=${family_arg}" -DNNBUILD_TOUCH=${touch}
            -P "${_NNBUILD_CMAKE_DIR}/nnbuild_hal_wrappers.cmake"
    DEPENDS "${model}" "${base}/options.txt" ${tool_files}
            "${_NNBUILD_CMAKE_DIR}/nnbuild_hal_wrappers.cmake"
    WORKING_DIRECTORY "${base}"      # not the binary dir: a folder there could shadow a module
    COMMENT "nnbuild: generating ${shown} from ${ARG_MODEL}"
    VERBATIM)

  add_library(${target} ${sources})
  if(ARG_WEIGHTS STREQUAL "embed")
    set_source_files_properties("${project}/weights/${prefix}_weights.S" PROPERTIES
      LANGUAGE ASM
      COMPILE_OPTIONS "-Wa,-I${project}/weights"
      OBJECT_DEPENDS "${project}/weights/${prefix}.bin")
  endif()
  set_target_properties(${target} PROPERTIES
    C_STANDARD 11 C_STANDARD_REQUIRED ON POSITION_INDEPENDENT_CODE ON
    NNBUILD_PROJECT_DIR "${project}" NNBUILD_PREFIX "${prefix}" NNBUILD_WEIGHTS "${ARG_WEIGHTS}"
    NNBUILD_WEIGHTS_FILE "${project}/weights/${prefix}.bin")
  if(NNBUILD_C_FLAGS_${isa} AND CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    # the target's instruction set, for the library's C sources (not the app's)
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:C>:${NNBUILD_C_FLAGS_${isa}}>")
  endif()
  # hal/ first: a model named like a kernel family (conv, pool...) includes its header by path
  target_include_directories(${target} PRIVATE "${project}/hal")
  target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${project}/include>")
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_package(Threads REQUIRED)     # the kernels' thread pool (hal/nn_pool.c)
  target_link_libraries(${target} PRIVATE Threads::Threads)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "MSVC")
    find_library(NNBUILD_LIBM m)
    if(NNBUILD_LIBM)
      target_link_libraries(${target} PRIVATE "${NNBUILD_LIBM}")
    endif()
  endif()
endfunction()

# nn_add_model_executable(<model-target> [NAME <executable>])
#
# The standalone command-line app of a model added with nn_add_model():
#   <executable> --input NAME=FILE.npy ... [--output-dir DIR] [--bench N] [--threads N]
# (see README, "The app"). NAME defaults to <model-target>_app. With WEIGHTS file the app reads
# the generated weights file by default (--weights FILE overrides it).
#
# Notes
#   Call it after nn_add_model(<model-target> ...); unknown arguments are errors.
function(nn_add_model_executable model_target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "NAME" "")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nn_add_model_executable(${model_target}): unknown arguments: "
            "${ARG_UNPARSED_ARGUMENTS} (known: NAME)")
  endif()
  if(ARG_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "nn_add_model_executable(${model_target}): no value given for "
            "${ARG_KEYWORDS_MISSING_VALUES}")
  endif()
  if(NOT TARGET ${model_target})
    message(FATAL_ERROR "nn_add_model_executable(${model_target}): no such target; "
            "call nn_add_model(${model_target} ...) first")
  endif()
  get_target_property(project ${model_target} NNBUILD_PROJECT_DIR)
  if(NOT project)
    message(FATAL_ERROR "nn_add_model_executable(${model_target}): not a target made by nn_add_model()")
  endif()
  set(name "${model_target}_app")
  if(ARG_NAME)
    set(name "${ARG_NAME}")
  endif()
  add_executable(${name} "${project}/app/main.c")
  set_target_properties(${name} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON)
  target_link_libraries(${name} PRIVATE ${model_target})
  get_target_property(weights ${model_target} NNBUILD_WEIGHTS)
  if(weights STREQUAL "file")
    get_target_property(blob ${model_target} NNBUILD_WEIGHTS_FILE)
    target_compile_definitions(${name} PRIVATE "NN_DEFAULT_WEIGHTS=\"${blob}\"")
  endif()
endfunction()
