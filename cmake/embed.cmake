# vap_embed_files(<target_source_var> <symbol_prefix> <files...>)
# Turns files (SQL migrations) into a generated C source holding them as NUL-terminated
# strings plus a table { name, text }, so binaries carry their migrations with them.
function(vap_embed_files out_var prefix)
    set(out_c ${CMAKE_CURRENT_BINARY_DIR}/${prefix}_embedded.c)
    add_custom_command(
        OUTPUT ${out_c}
        COMMAND ${CMAKE_COMMAND} -DOUT=${out_c} -DPREFIX=${prefix} "-DFILES=${ARGN}"
                -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
        DEPENDS ${ARGN} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
        COMMENT "Embedding ${prefix} files")
    set(${out_var} ${out_c} PARENT_SCOPE)
endfunction()
