# vap_embed_files(<target_source_var> <symbol_prefix> <files...>)
# Turns files (SQL migrations) into a generated C source holding them as NUL-terminated
# strings plus a table { name, text }, so binaries carry their migrations with them.
function(vap_embed_files out_var prefix)
    set(out_c ${CMAKE_CURRENT_BINARY_DIR}/${prefix}_embedded.c)
    # A ';' list would be split into separate arguments of the command: pass it with '|'.
    string(REPLACE ";" "|" files_arg "${ARGN}")
    add_custom_command(
        OUTPUT ${out_c}
        COMMAND ${CMAKE_COMMAND} -DOUT=${out_c} -DPREFIX=${prefix} "-DFILES=${files_arg}"
                -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
        DEPENDS ${ARGN} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
        COMMENT "Embedding ${prefix} files"
        VERBATIM)
    set(${out_var} ${out_c} PARENT_SCOPE)
endfunction()
