// Webhooks in words (pure, unit-tested): a webhook's state line, one delivery of its log, and the
// check of a URL before it is sent to the box (which checks again and has the last word).

/** A webhook's state: `paused`, `ok`, `failing` since when and why, or `new` (nothing sent yet). */
export function stateText(w, now = Date.now()) {
  const waiting = w.waiting_events ? ` · ${w.waiting_events} event${w.waiting_events === 1 ? '' : 's'} to look at` : '';
  if (w.state === 'paused') return `paused: nothing is sent until it is resumed${waiting}`;
  if (w.state === 'failing') {
    const since = w.failing_since ? ` for ${ago(now - w.failing_since)}` : '';
    return `failing${since}: ${w.last_error || 'no answer'}${waiting}`;
  }
  if (w.state === 'ok') return `ok${waiting}`;
  return `nothing sent yet${waiting}`;
}

/** "12 s", "3 min", "2 h". */
export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Whether a delivery was taken (a 2xx). */
export function delivered(d) {
  return Number.isInteger(d.http_status) && d.http_status >= 200 && d.http_status < 300;
}

/** One line of the delivery log. */
export function deliveryText(d) {
  const what = d.seq == null ? 'test' : `#${d.seq} ${d.event_type}`;
  const answer = d.http_status != null ? `HTTP ${d.http_status}` : d.error || 'no answer';
  const attempt = d.attempt > 1 ? ` (attempt ${d.attempt})` : '';
  return `${what}${attempt}: ${answer}, ${d.duration_ms} ms`;
}

/** `{value}` or `{error}`: an https:// URL (http:// only when the box allows it: it says). */
export function checkUrl(text) {
  const url = String(text || '').trim();
  if (!url) return { error: 'enter the receiver\'s URL (https://…)' };
  let u;
  try {
    u = new URL(url);
  } catch {
    return { error: `"${url}" is not a URL` };
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return { error: 'the URL must start with https://' };
  if (u.username || u.password) return { error: 'no user name or password in the URL: the box signs each request' };
  return { value: url };
}
