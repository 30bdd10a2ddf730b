// A voice conversation over the native WebSocket protocol (API.md, "Voice stream"):
// 16 kHz PCM16 frames of 20 ms both ways, JSON events as text frames.
//
//   const v = new VoiceSession({token, agent, onevent});
//   await v.start();          // from a click: audio context, worklets, microphone, socket
//   v.sendText('hello'); v.setMuted(true); v.interrupt(); v.end();
//
// onevent(type, detail) reports: 'state' {state}, 'session' {sessionId, resumed},
// 'transcript' {turn, text, final}, 'speech' {speaking}, 'agent-text' {turn, text, final},
// 'agent-played' {turn, playedMs}, 'interrupted' {turn, playedMs}, 'level' {mic, out},
// 'mic' {available, error}, 'reconnecting' {attempt}, 'error' {code, message},
// 'closed' {code, reason, kind, message} (kind: ended | exhausted | busy | unauthorized |
// too-many | unknown-agent | lost | refused).
// A dropped socket is resumed with ?resume=<session_id> for up to 30 s.

const RESUME_WINDOW_MS = 28000;
const MAX_SOCKET_BACKLOG = 64 * 1024; // bytes queued on the socket before mic frames are dropped
const PLAYBACK_REPORT_MS = 200;

export class VoiceSession {
    constructor({ token, agent, onevent, micConstraints }) {
        this.token = token;
        this.agent = agent;
        this.emit = onevent || (() => {});
        this.micConstraints = micConstraints || { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 };
        this.ws = null;
        this.sessionId = null;
        this.started = false;
        this.closedForGood = false;
        this.muted = false;
        this.audioTurn = -1; // turn of the agent audio now arriving
        this.dropTurns = new Set(); // interrupted turns whose late frames are dropped
        this.latestVisitorTurn = -1;
        this.lostAt = 0;
        this.attempt = 0;
        this.lastReport = 0;
        this.player = { playing: false, turn: -1, playedMs: 0, totalMs: 0 };
        this.visitorSpeaking = false;
        this.waitingReply = false;
    }

    // Builds the audio graph and opens the socket (the microphone follows when the
    // session has started). Call from a user gesture.
    async start() {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        if (!Ctx || !('audioWorklet' in Ctx.prototype)) throw new Error('This browser cannot play the agent\u2019s voice (no AudioWorklet). Please use a current browser.');
        this.ctx = new Ctx({ latencyHint: 'interactive' });
        await this.ctx.audioWorklet.addModule('/app/player-worklet.js');
        await this.ctx.audioWorklet.addModule('/app/mic-worklet.js');
        this.playerNode = new AudioWorkletNode(this.ctx, 'vap-player', { numberOfInputs: 0, outputChannelCount: [1] });
        this.playerNode.port.onmessage = (e) => this.onPlayer(e.data);
        this.playerNode.connect(this.ctx.destination);
        if (this.ctx.state === 'suspended') await this.ctx.resume().catch(() => {});
        this.connect();
    }

    async openMic() {
        if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
            this.emit('mic', { available: false, error: 'The microphone needs a secure (https) connection. You can type your messages instead.' });
            return;
        }
        try {
            this.stream = await navigator.mediaDevices.getUserMedia({ audio: this.micConstraints, video: false });
        } catch (err) {
            const denied = err && (err.name === 'NotAllowedError' || err.name === 'SecurityError');
            const missing = err && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError');
            const why = denied ? 'Microphone access was blocked.' : missing ? 'No microphone was found.' : 'The microphone could not be opened.';
            this.emit('mic', { available: false, error: `${why} You can type your messages instead.` });
            return;
        }
        if (this.closedForGood) {
            this.stopMic();
            return;
        }
        this.micSource = this.ctx.createMediaStreamSource(this.stream);
        this.micNode = new AudioWorkletNode(this.ctx, 'vap-mic-capture', { numberOfOutputs: 0, channelCount: 1, channelCountMode: 'explicit' });
        this.micNode.port.onmessage = (e) => this.onMicFrame(e.data);
        this.micSource.connect(this.micNode);
        this.emit('mic', { available: true });
    }

    url(resume) {
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        const q = new URLSearchParams({ agent_type: this.agent, codec: 'pcm16', sample_rate: '16000', token: this.token });
        if (resume) q.set('resume', resume);
        return `${proto}//${location.host}/api/voice-agents/stream?${q}`;
    }

    connect(resume) {
        const ws = new WebSocket(this.url(resume));
        ws.binaryType = 'arraybuffer';
        this.ws = ws;
        this.opened = false;
        ws.onopen = () => {
            this.opened = true;
        };
        ws.onmessage = (e) => {
            if (ws !== this.ws) return;
            if (typeof e.data === 'string') this.onEvent(e.data);
            else this.onAudio(e.data);
        };
        ws.onclose = (e) => {
            if (ws === this.ws) this.onClose(e.code, e.reason);
        };
        this.setState();
    }

    onEvent(text) {
        let ev;
        try {
            ev = JSON.parse(text);
        } catch {
            return;
        }
        switch (ev.type) {
            case 'session.started':
                this.sessionId = ev.session_id;
                this.started = true;
                this.attempt = 0;
                this.lostAt = 0;
                this.emit('session', { sessionId: ev.session_id, resumed: !!ev.resumed, message: ev.message });
                // The microphone opens once the agent is there: no permission prompt for
                // a session that is refused.
                if (!this.micRequested) {
                    this.micRequested = true;
                    this.openMic();
                }
                break;
            case 'speech.started':
                this.visitorSpeaking = true;
                this.emit('speech', { speaking: true });
                if (this.player.playing) this.playerNode.port.postMessage({ type: 'gain', value: 0.35 }); // duck while the visitor talks over
                break;
            case 'speech.stopped':
                this.visitorSpeaking = false;
                this.emit('speech', { speaking: false });
                this.playerNode.port.postMessage({ type: 'gain', value: 1 });
                break;
            case 'transcript.partial':
                this.emit('transcript', { turn: ev.turn_id, text: ev.text, final: false });
                break;
            case 'transcript.final':
                this.latestVisitorTurn = Math.max(this.latestVisitorTurn, ev.turn_id);
                this.waitingReply = true;
                this.emit('transcript', { turn: ev.turn_id, text: ev.text, final: true });
                break;
            case 'agent.text':
                if (ev.turn_id < this.latestVisitorTurn || this.dropTurns.has(ev.turn_id)) break; // stale reply
                this.emit('agent-text', { turn: ev.turn_id, text: ev.text, final: !!ev.final });
                if (ev.final) this.expectAudio(ev.turn_id);
                break;
            case 'agent.audio.start':
                this.audioTurn = ev.turn_id;
                this.audioStarted = ev.turn_id;
                break;
            case 'agent.audio.end':
                this.playerNode.port.postMessage({ type: 'end', turn: ev.turn_id });
                break;
            case 'agent.interrupted':
                this.dropTurns.add(ev.turn_id);
                this.playerNode.port.postMessage({ type: 'flush' });
                this.playerNode.port.postMessage({ type: 'gain', value: 1 });
                this.emit('interrupted', { turn: ev.turn_id, playedMs: ev.played_ms });
                break;
            case 'error':
                this.emit('error', { code: ev.code, message: ev.message });
                break;
            case 'session.ended':
                this.closedForGood = true;
                this.endReason = ev.reason;
                break;
            default:
                break;
        }
        this.setState();
    }

    // A reply whose audio never comes (speech synthesis failed) must not leave the page
    // "thinking" for ever.
    expectAudio(turn) {
        clearTimeout(this.audioTimer);
        this.audioTimer = setTimeout(() => {
            if (this.audioStarted !== turn && !this.player.playing && turn >= this.latestVisitorTurn) {
                this.waitingReply = false;
                this.setState();
            }
        }, 4000);
    }

    onAudio(buf) {
        if (this.audioTurn < 0 || this.dropTurns.has(this.audioTurn) || this.audioTurn < this.latestVisitorTurn) return;
        this.playerNode.port.postMessage({ type: 'frame', turn: this.audioTurn, pcm: buf }, [buf]);
    }

    onMicFrame({ pcm, level }) {
        this.micLevel = level;
        const ws = this.ws;
        if (!ws || ws.readyState !== WebSocket.OPEN || !this.started) return;
        if (ws.bufferedAmount > MAX_SOCKET_BACKLOG) return; // a stalled network: drop, stay real time
        // Muted still sends silence, so the agent hears the end of a turn.
        ws.send(this.muted ? new ArrayBuffer(pcm.byteLength) : pcm);
    }

    onPlayer(msg) {
        if (msg.type === 'status') {
            const wasPlaying = this.player.playing;
            this.player = msg;
            this.emit('level', { mic: this.muted ? 0 : this.micLevel || 0, out: msg.level });
            if (msg.turn >= 0) this.emit('agent-played', { turn: msg.turn, playedMs: msg.playedMs, totalMs: msg.totalMs });
            const now = performance.now();
            if (msg.playing && msg.turn >= 0 && now - this.lastReport >= PLAYBACK_REPORT_MS) {
                this.lastReport = now;
                this.send({ type: 'playback', turn_id: msg.turn, played_ms: msg.playedMs });
            }
            if (wasPlaying !== msg.playing) this.setState();
        } else if (msg.type === 'done') {
            this.send({ type: 'playback', turn_id: msg.turn, played_ms: msg.playedMs });
            this.emit('agent-played', { turn: msg.turn, playedMs: msg.playedMs, totalMs: msg.totalMs, done: true });
            if (msg.turn >= this.latestVisitorTurn) this.waitingReply = false;
            this.player = { ...this.player, playing: false };
            this.setState();
        }
    }

    // connecting | reconnecting | speaking | listening | thinking | ended
    currentState() {
        if (this.closedForGood && !this.started) return 'ended';
        if (this.final) return 'ended';
        if (!this.started || (this.ws && this.ws.readyState !== WebSocket.OPEN)) return this.lostAt ? 'reconnecting' : 'connecting';
        if (this.player.playing) return 'speaking';
        if (this.visitorSpeaking) return 'listening';
        if (this.waitingReply) return 'thinking';
        return 'listening';
    }

    setState() {
        const state = this.currentState();
        if (state !== this.lastState) {
            this.lastState = state;
            this.emit('state', { state });
        }
    }

    onClose(code, reason) {
        const wasStarted = this.started;
        this.started = false;
        this.playerNode && this.playerNode.port.postMessage({ type: 'flush' });
        if (this.closedForGood || code === 1000) {
            this.finish(code, reason, 'ended', 'The conversation has ended.');
            return;
        }
        if (!wasStarted && !this.lostAt) {
            // The first connection was refused or failed.
            const refusal = refusalOf(code, reason);
            if (refusal) this.finish(code, reason, refusal.kind, refusal.message);
            else this.finish(code, reason, 'lost', 'Could not connect to the voice service. Please check your connection and try again.');
            return;
        }
        if (code === 4401) {
            const refusal = refusalOf(code, reason);
            this.finish(code, reason, refusal.kind, refusal.message);
            return;
        }
        if (code === 1011) {
            this.finish(code, reason, 'lost', 'The voice service lost this conversation. Please start a new one.');
            return;
        }
        // A dropped connection: resume the same session within the window. A gateway that
        // has just restarted may not know the session's worker yet (4404, 1013): retry.
        const now = Date.now();
        if (!this.lostAt) this.lostAt = now;
        if (now - this.lostAt > RESUME_WINDOW_MS) {
            this.finish(code, reason, 'lost', 'The connection was lost and the conversation could not be resumed.');
            return;
        }
        this.attempt++;
        this.emit('reconnecting', { attempt: this.attempt });
        this.setState();
        const delay = Math.min(2000, 300 * 2 ** (this.attempt - 1));
        this.retryTimer = setTimeout(() => this.connect(this.sessionId), delay);
    }

    finish(code, reason, kind, message) {
        this.final = true;
        this.closedForGood = true;
        clearTimeout(this.retryTimer);
        this.setState();
        this.emit('closed', { code, reason, kind, message });
        this.release();
    }

    send(obj) {
        if (this.ws && this.ws.readyState === WebSocket.OPEN && this.started) this.ws.send(JSON.stringify(obj));
    }

    sendText(text) {
        if (!this.started) return false;
        this.playerNode.port.postMessage({ type: 'flush' });
        this.send({ type: 'input_text', text });
        this.waitingReply = true;
        this.latestVisitorTurn = Math.max(this.latestVisitorTurn, this.audioTurn + 1);
        this.setState();
        return true;
    }

    setMuted(muted) {
        this.muted = muted;
        if (this.stream) for (const t of this.stream.getAudioTracks()) t.enabled = !muted;
    }

    interrupt() {
        this.send({ type: 'interrupt' });
        this.playerNode.port.postMessage({ type: 'flush' });
    }

    // Ends the session politely (the server answers session.ended and closes).
    end() {
        clearTimeout(this.retryTimer);
        if (this.ws && this.ws.readyState === WebSocket.OPEN && this.started) {
            this.closedForGood = true;
            this.send({ type: 'end' });
            this.closeTimer = setTimeout(() => this.ws && this.ws.close(1000), 1500);
        } else {
            this.closedForGood = true;
            if (this.ws) this.ws.close(1000);
            this.finish(1000, '', 'ended', 'The conversation has ended.');
        }
    }

    stopMic() {
        if (this.stream) for (const t of this.stream.getTracks()) t.stop();
        this.stream = null;
    }

    release() {
        clearTimeout(this.closeTimer);
        this.stopMic();
        if (this.micSource) this.micSource.disconnect();
        if (this.ctx && this.ctx.state !== 'closed') setTimeout(() => this.ctx.close().catch(() => {}), 300);
    }
}

// What a refusal close code means for the visitor.
function refusalOf(code, reason) {
    switch (code) {
        case 4401:
            return { kind: 'unauthorized', message: 'Your code is no longer valid (it may have been withdrawn). Please enter a code again.' };
        case 4403:
            return { kind: 'exhausted', message: 'Access was refused: this code has no conversations left.' };
        case 4404:
            return { kind: 'unknown-agent', message: 'This agent is not available any more.' };
        case 4429:
            return { kind: 'too-many', message: 'Too many conversations are open with this code. Close the others and try again.' };
        case 1013:
            return { kind: 'busy', message: 'All voice agents are busy right now (no free voice worker). Please try again in a moment: trying again does not spend another use of your code.' };
        case 1008:
            return { kind: 'refused', message: `The voice service refused the connection${reason ? `: ${reason}` : ''}.` };
        default:
            return null;
    }
}
