// AudioWorklet: plays the agent's voice (16 kHz PCM frames) through an adaptive jitter
// buffer and reports what was actually heard.
//
// Frames arrive tagged with their turn. Playback of a turn starts once `target` ms are
// buffered (or the turn's end has arrived); an underrun goes back to buffering and
// raises the target by 20 ms (up to 300 ms), so a bursty network costs one pause, not a
// stutter. Output is resampled to the context's rate by linear interpolation. Every
// ~50 ms the processor posts {type: 'status', playing, turn, playedMs, totalMs, level,
// bufferedMs}; when a turn has been played out (or flushed) it posts {type: 'done'}.
//
// Messages in: {type: 'frame', turn, pcm: ArrayBuffer of Int16}, {type: 'end', turn},
// {type: 'flush'} (drop everything queued: barge-in), {type: 'gain', value}.

const IN_RATE = 16000;
const MIN_TARGET_MS = 60;
const MAX_TARGET_MS = 300;

class Player extends AudioWorkletProcessor {
    constructor() {
        super();
        this.step = IN_RATE / sampleRate; // input samples per output sample
        this.queue = []; // {turn, data: Float32Array, off}
        this.buffered = 0; // input samples queued
        this.state = 'idle'; // idle | buffering | playing
        this.targetMs = 80;
        this.ended = new Set();
        this.turn = -1; // the turn being played
        this.played = 0; // input samples of this.turn played
        this.lastDone = -1; // the last turn reported done
        this.total = 0; // input samples played in all
        this.a = 0; // interpolation: previous and next input samples
        this.b = 0;
        this.frac = 0;
        this.gain = 1;
        this.gainTarget = 1;
        this.energy = 0;
        this.energyN = 0;
        this.blocks = 0;
        this.statusEvery = Math.max(1, Math.round((sampleRate * 0.05) / 128));
        this.port.onmessage = (e) => this.onMessage(e.data);
    }

    onMessage(msg) {
        if (msg.type === 'frame') {
            const pcm = new Int16Array(msg.pcm);
            const data = new Float32Array(pcm.length);
            for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
            this.queue.push({ turn: msg.turn, data, off: 0 });
            this.buffered += data.length;
            if (this.state === 'idle') this.state = 'buffering';
        } else if (msg.type === 'end') {
            this.ended.add(msg.turn);
            if (this.ended.size > 64) this.ended.delete(this.ended.values().next().value);
            const queued = this.queue.some((c) => c.turn === msg.turn && c.off < c.data.length);
            if (!queued && !(this.state === 'playing' && this.turn === msg.turn)) {
                this.finishTurn(msg.turn);
                if (!this.queue.length) this.state = 'idle';
            }
        } else if (msg.type === 'flush') {
            this.queue = [];
            this.buffered = 0;
            if (this.state !== 'idle') this.finishTurn(this.turn);
            this.state = 'idle';
        } else if (msg.type === 'gain') {
            this.gainTarget = Math.max(0, Math.min(1, msg.value));
        }
    }

    finishTurn(turn) {
        if (turn < 0 || turn === this.lastDone) return;
        this.lastDone = turn;
        const played = turn === this.turn ? this.played : 0;
        this.port.postMessage({ type: 'done', turn, playedMs: Math.round(played / 16), totalMs: Math.round(this.total / 16) });
    }

    // Next input sample, or null on underrun. Counts what is played per turn.
    pull() {
        while (this.queue.length) {
            const head = this.queue[0];
            if (head.off < head.data.length) {
                if (head.turn !== this.turn) {
                    this.finishTurn(this.turn);
                    this.turn = head.turn;
                    this.played = 0;
                }
                this.buffered--;
                this.played++;
                this.total++;
                return head.data[head.off++];
            }
            this.queue.shift();
        }
        return null;
    }

    readyToPlay() {
        if (this.buffered >= (this.targetMs * IN_RATE) / 1000) return true;
        const last = this.queue[this.queue.length - 1];
        return !!last && this.ended.has(last.turn);
    }

    process(inputs, outputs) {
        const out = outputs[0][0];
        if (this.state === 'buffering' && this.readyToPlay()) this.state = 'playing';
        for (let i = 0; i < out.length; i++) {
            let y = 0;
            if (this.state === 'playing') {
                y = this.a + (this.b - this.a) * this.frac;
                this.frac += this.step;
                while (this.frac >= 1 && this.state === 'playing') {
                    const next = this.pull();
                    if (next === null) {
                        this.underrun();
                        break;
                    }
                    this.frac -= 1;
                    this.a = this.b;
                    this.b = next;
                }
            }
            this.gain += (this.gainTarget - this.gain) * 0.002;
            y *= this.gain;
            out[i] = y;
            this.energy += y * y;
            this.energyN++;
        }
        for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
        if (++this.blocks >= this.statusEvery) this.postStatus();
        return true;
    }

    underrun() {
        this.frac = 0;
        this.a = this.b = 0;
        if (this.ended.has(this.turn) && !this.queue.length) {
            this.finishTurn(this.turn);
            this.state = 'idle';
            return;
        }
        this.state = this.queue.length ? 'playing' : 'buffering';
        if (this.state === 'buffering') this.targetMs = Math.min(MAX_TARGET_MS, this.targetMs + 20);
    }

    postStatus() {
        this.blocks = 0;
        const level = this.energyN ? Math.sqrt(this.energy / this.energyN) : 0;
        this.energy = 0;
        this.energyN = 0;
        this.port.postMessage({
            type: 'status',
            playing: this.state === 'playing',
            state: this.state,
            turn: this.turn,
            playedMs: Math.round(this.played / 16),
            totalMs: Math.round(this.total / 16),
            bufferedMs: Math.round(this.buffered / 16),
            targetMs: this.targetMs,
            level,
        });
    }
}

registerProcessor('vap-player', Player);
