# Speaks every utterance of UTTERANCES (a JSON list of {"id", "text", "voice", ...}) with
# the flite CLI into OUT_DIR/<id>.wav. flite's voices kal16, slt, awb and rms all write
# 16 kHz mono 16-bit PCM, what the recogniser takes, so no resampling is needed.
# Run by the stt_speech target: cmake -DUTTERANCES=... -DOUT_DIR=... -DFLITE=... -P this
file(READ ${UTTERANCES} json)
file(MAKE_DIRECTORY ${OUT_DIR})
string(JSON n LENGTH "${json}")
math(EXPR last "${n} - 1")
set(voices kal16 slt awb rms)
foreach(i RANGE ${last})
    string(JSON id GET "${json}" ${i} id)
    string(JSON text GET "${json}" ${i} text)
    string(JSON voice ERROR_VARIABLE no_voice GET "${json}" ${i} voice)
    if(no_voice)
        math(EXPR v "${i} % 4")
        list(GET voices ${v} voice)
    endif()
    execute_process(COMMAND ${FLITE} -voice ${voice} -t "${text}" -o ${OUT_DIR}/${id}.wav
                    RESULT_VARIABLE rv)
    if(NOT rv EQUAL 0)
        message(FATAL_ERROR "flite failed for ${id}")
    endif()
endforeach()
file(TOUCH ${OUT_DIR}/.stamp)
