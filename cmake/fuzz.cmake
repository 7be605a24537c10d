# libFuzzer targets (tests/fuzz/fuzz_*.c), only with -DKLC_FUZZ=ON and clang:
#   CC=clang cmake -S . -B build-fuzz -DKLC_FUZZ=ON -DKLC_BUILD_BENCH=OFF -DKLC_BUILD_TESTS=OFF
#   cmake --build build-fuzz --target fuzz_tokenizer_encode fuzz_tokenizer_load
#   build-fuzz/fuzz_tokenizer_encode tests/fuzz/corpus/encode -max_total_time=60
# (fuzz_state_file reads trainer state files: tests/fuzz/corpus/state)
# Each target is compiled from the sources it exercises (the tokenizer and core) with
# coverage instrumentation and AddressSanitizer + UndefinedBehaviorSanitizer, so it does
# not depend on the rest of the library building under clang.
option(KLC_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(KLC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "KLC_FUZZ=ON needs clang (configure with CC=clang)")
  endif()
  file(GLOB KLC_FUZZ_LIB_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/tokenizer/*.c
    ${PROJECT_SOURCE_DIR}/src/core/*.c)
  list(APPEND KLC_FUZZ_LIB_SOURCES ${PROJECT_SOURCE_DIR}/src/io/state_file.c
    ${PROJECT_SOURCE_DIR}/src/io/atomic_file.c)
  file(GLOB KLC_FUZZ_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_*.c)
  foreach(src ${KLC_FUZZ_SOURCES})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src} ${KLC_FUZZ_LIB_SOURCES})
    target_compile_options(${name} PRIVATE -g -O1 -fsanitize=fuzzer,address,undefined
      -fno-sanitize-recover=all ${KLC_WARNINGS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_compile_definitions(${name} PRIVATE KLC_BUILDING_LIBRARY _GNU_SOURCE
      KLC_NO_TARGET_CLONES KLC_FUZZ_DATA="${PROJECT_SOURCE_DIR}/tests/data")
    target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include
      ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(${name} PRIVATE PkgConfig::PCRE2 PkgConfig::JANSSON
      PkgConfig::XSMM PkgConfig::OPENBLAS OpenMP::OpenMP_C m)
  endforeach()
endif()
