// A kitchen screen's sound: a two-note chime for a new ticket, one note for a changed one (lines
// added or voided, a rush), made with Web Audio on the page (no audio files). On or off per
// screen, remembered on the device; browsers allow sound only after a tap on the page, so the
// screen's Sound button (or its Test) is what unlocks it.

const NOTES = { new: [880, 1320], changed: [660] };

export class Chime {
  /** `key`: where this screen keeps its on/off choice (localStorage). */
  constructor(key) {
    this.key = key;
    this.on = localStorage.getItem(key) !== 'off';
    this.ctx = null;
    /** Chimes played, by kind (what the page's tests read). */
    this.played = { new: 0, changed: 0 };
  }

  /** Starts the audio context: call from a tap (the browser's autoplay rule). */
  unlock() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!this.ctx) this.ctx = new Ctx();
    if (this.ctx.state === 'suspended') this.ctx.resume();
  }

  toggle() {
    this.on = !this.on;
    localStorage.setItem(this.key, this.on ? 'on' : 'off');
    if (this.on) this.unlock();
    return this.on;
  }

  /** Plays `kind` ('new' or 'changed') if the sound is on; `force` plays it anyway (Test). */
  play(kind, force = false) {
    if (!this.on && !force) return;
    this.played[kind] += 1;
    if (!this.ctx || this.ctx.state !== 'running') return;
    const t0 = this.ctx.currentTime;
    NOTES[kind].forEach((hz, i) => {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = hz;
      const at = t0 + i * 0.18;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.6, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.3);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(at);
      osc.stop(at + 0.32);
    });
  }
}

/** What a live event on a shown ticket sounds like: a new ticket, a change, or nothing. */
export function chimeFor(type, wasShown) {
  if (type === 'ticket_bumped' || type === 'line_bumped' || type === 'order_completed') return null;
  if (!wasShown) return 'new';
  if (type === 'lines_added' || type === 'line_voided' || type === 'rush_changed' || type === 'course_fired') return 'changed';
  return null;
}
