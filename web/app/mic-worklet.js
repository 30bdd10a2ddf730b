// AudioWorklet: the microphone, as the voice stream wants it. Takes the first input
// channel at the context's rate, low-passes it (4th-order Butterworth at 7 kHz) and
// resamples it to 16 kHz, and posts 20 ms frames of PCM16LE (320 samples) to the main
// thread together with the frame's RMS level (0..1).

const OUT_RATE = 16000;
const FRAME = 320;

// RBJ low-pass biquad, transposed direct form II.
function lowpass(f0, q, fs) {
    const w0 = (2 * Math.PI * f0) / fs;
    const alpha = Math.sin(w0) / (2 * q);
    const cos = Math.cos(w0);
    const a0 = 1 + alpha;
    const b0 = (1 - cos) / 2 / a0;
    const b1 = (1 - cos) / a0;
    const a1 = (-2 * cos) / a0;
    const a2 = (1 - alpha) / a0;
    let z1 = 0;
    let z2 = 0;
    return (x) => {
        const y = b0 * x + z1;
        z1 = b1 * x - a1 * y + z2;
        z2 = b0 * x - a2 * y;
        return y;
    };
}

class MicCapture extends AudioWorkletProcessor {
    constructor() {
        super();
        this.ratio = sampleRate / OUT_RATE; // input samples per output sample
        this.filters = this.ratio > 1.01 ? [lowpass(7000, 0.5412, sampleRate), lowpass(7000, 1.3066, sampleRate)] : [];
        this.pos = 1; // position of the next output sample, from the previous input sample
        this.prev = 0;
        this.frame = new Int16Array(FRAME);
        this.fill = 0;
        this.energy = 0;
    }

    emit(y) {
        const s = Math.max(-1, Math.min(1, y));
        this.frame[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
        this.energy += s * s;
        if (this.fill === FRAME) {
            const level = Math.sqrt(this.energy / FRAME);
            this.port.postMessage({ pcm: this.frame.buffer, level }, [this.frame.buffer]);
            this.frame = new Int16Array(FRAME);
            this.fill = 0;
            this.energy = 0;
        }
    }

    process(inputs) {
        const channel = inputs[0] && inputs[0][0];
        if (!channel) return true;
        for (let i = 0; i < channel.length; i++) {
            let x = channel[i];
            for (const f of this.filters) x = f(x);
            while (this.pos <= 1) {
                this.emit(this.prev + (x - this.prev) * this.pos);
                this.pos += this.ratio;
            }
            this.pos -= 1;
            this.prev = x;
        }
        return true;
    }
}

registerProcessor('vap-mic-capture', MicCapture);
