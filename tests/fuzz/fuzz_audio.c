/*
 * fuzz_audio: client audio frames -> audio_decode() (services/voice/audio/codec.c), as
 * the worker's input thread hands them over (input.c: handle_audio, at most 5760 samples
 * out). This is where a visitor's Opus packets and PCM16 frames, and a phone bridge's
 * mu-law, reach libopus, the resampler and the G.711 filter.
 *
 * Input: one byte choosing the stream's format (Opus 16 kHz, Opus 48 kHz, PCM16 16 kHz,
 * PCM16 48 kHz, mu-law 8 kHz), then frames, each a 2-byte little-endian length and that
 * many bytes (the last one takes what is left). One decoder per input: its state (Opus
 * prediction, resampler and filter history) carries from frame to frame as in a session.
 */
#include "fuzz.h"

#include "audio.h"

#define INPUT_MAX_SAMPLES 5760 /* input.c */

static const struct {
    enum audio_codec codec;
    int rate;
} formats[] = {
    {AUDIO_CODEC_OPUS, 16000},  {AUDIO_CODEC_OPUS, 48000}, {AUDIO_CODEC_PCM16, 16000},
    {AUDIO_CODEC_PCM16, 48000}, {AUDIO_CODEC_MULAW, 8000},
};
#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t f = fuzz_byte(&in) % N_FORMATS;
    struct audio_decoder *d = NULL;
    static int16_t out[INPUT_MAX_SAMPLES];

    FUZZ_CHECK(audio_decoder_new(formats[f].codec, formats[f].rate, &d) == 0, "decoder_new");
    while (in.n > 0) {
        size_t len = fuzz_byte(&in);
        const uint8_t *frame;
        int n;
        len |= (size_t)fuzz_byte(&in) << 8;
        if (len > in.n)
            len = in.n;
        frame = in.p;
        in.p += len;
        in.n -= len;
        /* An exact-size heap copy, so ASan sees a read past the frame's end. */
        uint8_t *copy = len ? malloc(len) : NULL;
        if (len)
            memcpy(copy, frame, len);
        n = audio_decode(d, copy, len, out, INPUT_MAX_SAMPLES);
        free(copy);
        FUZZ_CHECK(n <= INPUT_MAX_SAMPLES, "more samples than the buffer holds");
        if (n < 0)
            continue;
        if (formats[f].codec == AUDIO_CODEC_PCM16 && formats[f].rate == 16000)
            FUZZ_CHECK((size_t)n == len / 2, "PCM16 at 16 kHz must give one sample per 2 bytes");
        if (formats[f].codec == AUDIO_CODEC_MULAW)
            FUZZ_CHECK((size_t)n == 2 * len, "mu-law must give two 16 kHz samples per byte");
    }
    audio_decoder_free(d);
    return 0;
}
