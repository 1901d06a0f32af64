// Keeps a `Screen` (board.js) in step with the box over a `Link`: a fresh snapshot after every
// (re)connect, events by seq, and paged replays on a gap, one at a time.

import { Screen } from './board.js';
import { topics } from './wire.js';

export class Follower {
  /** `render(changedIds | null)`: null means "only the sync state changed". */
  constructor(station, render) {
    this.station = station;
    this.screen = new Screen(station);
    this.render = render;
    this.link = null;
    this.generation = 0;
    this.replayId = null;
    this.onEvent = () => {};
  }

  subscriptions() {
    return [[topics.events], [topics.board(this.station)]];
  }

  attach(link) {
    this.link = link;
  }

  /** A new MQTT session is starting: the stream position is gone. */
  session() {
    this.generation += 1;
    if (this.replayId) this.link.forget(this.replayId);
    this.replayId = null;
    this.screen.reset();
    this.render(null);
  }

  /** Routes a message; true if it was the follower's. */
  message(topic, value) {
    if (topic === topics.events) {
      if (value && typeof value.seq === 'number' && value.order) {
        const changed = this.screen.event(value);
        this.onEvent(value);
        this.render(new Set(changed));
        this.pump();
      }
      return true;
    }
    if (topic === topics.board(this.station)) {
      if (value && Array.isArray(value.orders) && typeof value.seq === 'number') {
        this.render(this.screen.snapshot(value));
        this.pump();
      }
      return true;
    }
    return false;
  }

  pump() {
    const from = this.screen.takeReplay();
    if (from !== null) this.replay(from, this.generation);
  }

  async replay(after, generation) {
    for (;;) {
      const cmd = this.link.command({ type: 'replay', after_seq: after });
      this.replayId = cmd.id;
      const reply = await cmd.reply;
      if (generation !== this.generation) return;
      this.replayId = null;
      const { changed, next } = this.screen.replayPage(reply);
      this.render(changed);
      if (!reply.ok) await new Promise((r) => setTimeout(r, 2000));
      if (next === null) break;
      after = next;
    }
    this.pump();
  }
}
