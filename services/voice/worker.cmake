# vap-voice itself: sessions, media link, playout, heartbeats, usage reports.
add_executable(vap-voice
    ${CMAKE_CURRENT_SOURCE_DIR}/main.c
    ${CMAKE_CURRENT_SOURCE_DIR}/agents_rt.c
    ${CMAKE_CURRENT_SOURCE_DIR}/events.c
    ${CMAKE_CURRENT_SOURCE_DIR}/input.c
    ${CMAKE_CURRENT_SOURCE_DIR}/link.c
    ${CMAKE_CURRENT_SOURCE_DIR}/metrics.c
    ${CMAKE_CURRENT_SOURCE_DIR}/playout.c
    ${CMAKE_CURRENT_SOURCE_DIR}/reply.c
    ${CMAKE_CURRENT_SOURCE_DIR}/report.c
    ${CMAKE_CURRENT_SOURCE_DIR}/session.c)
target_include_directories(vap-voice PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(vap-voice PRIVATE
                           VAP_DEFAULT_AGENTS_DIR="${PROJECT_SOURCE_DIR}/config/agents")
target_link_libraries(vap-voice PRIVATE vapvoice_audio vapvoice_stt vapvoice_tts vapvoice_dialog
                      vapcommon)
