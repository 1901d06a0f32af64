//! What a simulated device does with a reply: the round trip counted, one line printed, and
//! what follows (a held course scheduled, a bumped or completed ticket remembered).

use std::sync::atomic::Ordering::Relaxed;

use docket_core::wire::{self, Reply};
use tokio::time::Instant;

use crate::ctx::{ms, uniform};
use crate::device::Device;
use crate::order::{Action, Timer};

/// A held second course is fired this long (seconds, uniform) after the order was accepted.
const COURSE_DELAY: (f64, f64) = (8.0, 30.0);

impl Device {
    pub fn on_reply(&mut self, r: Reply) {
        let Some(p) = self.outbox.answered(&r.command) else {
            return; // a repeat, or a reply we already gave up on
        };
        let rtt = p.sent.elapsed();
        let stats = &self.ctx.stats;
        if let Ok(mut v) = stats.rtt_us.lock() {
            v.push(rtt.as_micros() as u64);
        }
        let resent = if p.resent { " (resent)" } else { "" };
        if !r.ok {
            stats.rejected.fetch_add(1, Relaxed);
            let (code, message) = r
                .error
                .map(|e| (e.code.to_string(), e.message))
                .unwrap_or_else(|| ("?".into(), "no error given".into()));
            let what = p.tag.describe();
            let rtt = ms(rtt);
            self.failed(
                &p.tag,
                format_args!("REJECTED {what}: {code}: {message} in {rtt}{resent}"),
            );
            return;
        }
        let order_id = r.order_id.clone().unwrap_or_else(|| "?".into());
        match p.tag {
            Action::Place {
                table,
                lines,
                held_course,
            } => {
                stats.placed.fetch_add(1, Relaxed);
                self.ctx.ours().insert(order_id.clone());
                let ticket = r.ticket.unwrap_or(0);
                let held = match held_course {
                    Some(course) => {
                        let after = uniform(&mut self.rng, COURSE_DELAY);
                        self.ctx.held().insert(order_id.clone());
                        self.timers.push((
                            Instant::now() + after,
                            Timer::Fire {
                                order_id: order_id.clone(),
                                ticket,
                                course,
                            },
                        ));
                        format!(", course {course} held")
                    }
                    None => String::new(),
                };
                self.ctx.say(format_args!(
                    "{} placed {order_id} ticket {ticket} table {table} ({lines} line{}{held}) in {}{resent}",
                    self.id,
                    if lines == 1 { "" } else { "s" },
                    ms(rtt)
                ));
            }
            Action::Fire {
                order_id,
                ticket,
                course,
            } => {
                stats.fired.fetch_add(1, Relaxed);
                self.ctx.held().remove(&order_id);
                self.ctx.say(format_args!(
                    "{} fired course {course} of {order_id} ticket {ticket} in {}{resent}",
                    self.id,
                    ms(rtt)
                ));
            }
            Action::Bump {
                order_id,
                ticket,
                station,
            } => {
                stats.bumped.fetch_add(1, Relaxed);
                self.done
                    .insert((order_id.clone(), station.clone()), r.seq.unwrap_or(0));
                self.ctx.say(format_args!(
                    "{} bumped {order_id} ticket {ticket} at {station} in {}{resent}",
                    self.id,
                    ms(rtt)
                ));
            }
            Action::Complete {
                order_id,
                ticket,
                table,
            } => {
                stats.completed.fetch_add(1, Relaxed);
                self.done
                    .insert((order_id.clone(), wire::EXPO.into()), r.seq.unwrap_or(0));
                self.ctx.say(format_args!(
                    "{} completed {order_id} ticket {ticket} table {table} in {}{resent}",
                    self.id,
                    ms(rtt)
                ));
            }
        }
    }
}
