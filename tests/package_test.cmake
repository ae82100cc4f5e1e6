# test_package: proves the installed package works from outside the tree.
#
#   cmake -DBUILD_DIR=<convfuse build> -DSOURCE_DIR=<convfuse source>
#         -DCONSUMER_SRC=<tests/package_consumer> -DC_COMPILER=<cc> [-DWORK_DIR=<scratch>]
#         [-DCUDA_ROOT=<toolkit>] [-DCONFIG=<Release|...>] [-DSANITIZE=ON] -P package_test.cmake
#
# Scratch: WORK_DIR, else a fresh $TMPDIR (or /tmp) /convfuse-package-test-XXXXXXXXXX.
# 1. cmake --install <build> --prefix <scratch>/prefix
# 2. no installed CMake/pkg-config file points back into the source or build tree
# 3. a copy of package_consumer/ (find_package(convfuse) + convfuse::convfuse) is configured
#    and built against that prefix only, then run from a scratch directory: it prints OK
# 4. the same main.c is compiled with `pkg-config --cflags --libs convfuse`
#    (PKG_CONFIG_PATH=<prefix>/<libdir>/pkgconfig) and run: it prints OK
# Prints "test_package: PASS" at the end (ctest's pass criterion).

foreach(var BUILD_DIR SOURCE_DIR CONSUMER_SRC C_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "test_package: ${var} not given")
  endif()
endforeach()

function(step name)
  message(STATUS "test_package: ${name}")
endfunction()

function(run_checked what)
  execute_process(COMMAND ${ARGN} WORKING_DIRECTORY ${WORK_DIR}/run
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "test_package: FAIL: ${what} (exit ${rc})\n"
                        "command: ${ARGN}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(LAST_OUT "${out}" PARENT_SCOPE)
endfunction()

# A fresh scratch directory outside both trees (kept on failure for a look, removed on success).
if(NOT WORK_DIR)
  set(tmp "$ENV{TMPDIR}")
  if(NOT tmp OR NOT IS_DIRECTORY "${tmp}")
    set(tmp /tmp)
  endif()
  string(RANDOM LENGTH 10 ALPHABET abcdefghijklmnopqrstuvwxyz0123456789 tag)
  set(WORK_DIR ${tmp}/convfuse-package-test-${tag})
endif()
set(PREFIX ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/src ${WORK_DIR}/run)

# ---- 1. install ----
step("installing ${BUILD_DIR} into ${PREFIX}")
set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
run_checked("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX}
            ${config_args})

file(GLOB_RECURSE cfg_files ${PREFIX}/*/convfuseConfig.cmake)
file(GLOB_RECURSE pc_files ${PREFIX}/*/convfuse.pc)
file(GLOB_RECURSE libs ${PREFIX}/*/libconvfuse.a)
file(GLOB_RECURSE headers ${PREFIX}/include/convfuse/convfuse.h)
foreach(what cfg_files pc_files libs headers)
  list(LENGTH ${what} n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "test_package: FAIL: the install has ${n} ${what} (want 1): ${${what}}")
  endif()
endforeach()
get_filename_component(cfg_dir ${cfg_files} DIRECTORY)
get_filename_component(pc_dir ${pc_files} DIRECTORY)

# ---- 2. nothing installed points back into the trees ----
file(GLOB_RECURSE meta ${PREFIX}/*.cmake ${PREFIX}/*.pc)
foreach(f IN LISTS meta)
  file(READ ${f} content)
  string(REPLACE "${PREFIX}" "<prefix>" content "${content}")
  foreach(tree SOURCE_DIR BUILD_DIR)
    string(FIND "${content}" "${${tree}}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "test_package: FAIL: installed ${f} refers to the ${tree} "
                          "(${${tree}}): the package would break once that tree is gone")
    endif()
  endforeach()
endforeach()

# ---- 3. CMake consumer ----
step("CMake consumer: find_package(convfuse) from ${PREFIX}")
file(COPY ${CONSUMER_SRC}/CMakeLists.txt ${CONSUMER_SRC}/main.c DESTINATION ${WORK_DIR}/src)
set(cuda_args "")
if(CUDA_ROOT)
  set(cuda_args -DCUDAToolkit_ROOT=${CUDA_ROOT})
endif()
set(san_flags "")
set(san_args "")
if(SANITIZE)
  set(san_flags -fsanitize=address,undefined)
  set(san_args "-DCMAKE_C_FLAGS=-fsanitize=address,undefined"
               "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
  set(ENV{LSAN_OPTIONS} "suppressions=${CMAKE_CURRENT_LIST_DIR}/lsan.supp:print_suppressions=0")
endif()
run_checked("configuring the consumer"
  ${CMAKE_COMMAND} -S ${WORK_DIR}/src -B ${WORK_DIR}/build
  -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ${cuda_args} ${san_args})
file(STRINGS ${WORK_DIR}/build/CMakeCache.txt found_dir REGEX "^convfuse_DIR:")
string(REGEX REPLACE "^convfuse_DIR:[A-Z]+=" "" found_dir "${found_dir}")
get_filename_component(found_dir "${found_dir}" REALPATH)
get_filename_component(cfg_dir_real "${cfg_dir}" REALPATH)
if(NOT found_dir STREQUAL cfg_dir_real)
  message(FATAL_ERROR "test_package: FAIL: find_package(convfuse) found ${found_dir}, "
                      "not the install at ${cfg_dir_real}")
endif()
run_checked("building the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
file(GLOB consumer_exe ${WORK_DIR}/build/consumer ${WORK_DIR}/build/*/consumer)
list(GET consumer_exe 0 consumer_exe)
file(COPY ${consumer_exe} DESTINATION ${WORK_DIR}/run)
run_checked("running the CMake consumer" ${WORK_DIR}/run/consumer)
if(NOT LAST_OUT MATCHES "^OK")
  message(FATAL_ERROR "test_package: FAIL: CMake consumer printed '${LAST_OUT}', want OK")
endif()
step("CMake consumer: ${LAST_OUT}")

# ---- 4. pkg-config consumer ----
find_program(PKG_CONFIG_EXE NAMES pkg-config pkgconf)
if(NOT PKG_CONFIG_EXE)
  message(FATAL_ERROR "test_package: FAIL: pkg-config not found")
endif()
step("pkg-config consumer: PKG_CONFIG_PATH=${pc_dir}")
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
unset(ENV{PKG_CONFIG_LIBDIR})
run_checked("pkg-config --cflags --libs convfuse" ${PKG_CONFIG_EXE} --cflags --libs convfuse)
string(STRIP "${LAST_OUT}" pc_flags)
step("pkg-config flags: ${pc_flags}")
string(FIND "${pc_flags}" "${PREFIX}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "test_package: FAIL: pkg-config flags '${pc_flags}' do not point into the "
                      "install prefix ${PREFIX}: convfuse.pc is not relocatable (its prefix is "
                      "the configure-time CMAKE_INSTALL_PREFIX, not where it was installed)")
endif()
separate_arguments(pc_list UNIX_COMMAND "${pc_flags}")
run_checked("compiling main.c with the pkg-config flags"
  ${C_COMPILER} -std=c11 -Wall -Wextra -Werror ${san_flags} ${WORK_DIR}/src/main.c -o
  ${WORK_DIR}/run/consumer_pc ${pc_list})
run_checked("running the pkg-config consumer" ${WORK_DIR}/run/consumer_pc)
if(NOT LAST_OUT MATCHES "^OK")
  message(FATAL_ERROR "test_package: FAIL: pkg-config consumer printed '${LAST_OUT}', want OK")
endif()
step("pkg-config consumer: ${LAST_OUT}")
file(REMOVE_RECURSE ${WORK_DIR})
message("test_package: PASS")
