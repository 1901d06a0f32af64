//! The exactly-once rule, as one model the engine and the in-memory [`crate::ledger::Ledger`]
//! both run: a command is known by who sent it and its id ([`CommandKey`], docs/protocol.md);
//! it is decided at most once, and every later copy, in the same batch or any later one, gets
//! the first reply. A batch's decisions count only once it is committed: if the commit fails,
//! every answer that depended on it becomes "send it again" ([`Batch::commit_failed`]), and
//! nothing of the batch is remembered.
//!
//! Generic over the reply's form (`R`): encoded bytes in the engine, [`crate::wire::Reply`] in
//! the model. Owns no storage: replies recorded by earlier batches are asked of the caller.

use std::collections::HashMap;

/// What makes a command the same command: the device that sent it and its id. Two devices may
/// use the same id for different commands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandKey {
    pub device: String,
    pub id: String,
}

impl CommandKey {
    pub fn new(device: &str, id: &str) -> Self {
        CommandKey {
            device: device.to_owned(),
            id: id.to_owned(),
        }
    }
}

/// What one command's sender hears once the batch is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<R> {
    /// Whose reply topic it goes to.
    pub device: String,
    pub reply: R,
    /// The command id when this answer stands only if the batch commits (a decision of this
    /// batch, or a copy of one).
    pub pending: Option<String>,
}

/// One batch's bookkeeping: the decisions it made (for in-batch copies), and the answers in the
/// order their commands came.
#[derive(Debug)]
pub struct Batch<R> {
    decided: HashMap<CommandKey, R>,
    answers: Vec<Answer<R>>,
    recorded: usize,
}

impl<R> Default for Batch<R> {
    fn default() -> Self {
        Batch {
            decided: HashMap::new(),
            answers: Vec::new(),
            recorded: 0,
        }
    }
}

impl<R: Clone> Batch<R> {
    /// A command seen before: answers it with its first reply and returns true. Looks in this
    /// batch first (the copy then also waits for the commit), then asks `recorded` for a reply an
    /// earlier, committed batch recorded.
    pub fn again<E>(
        &mut self,
        key: &CommandKey,
        recorded: impl FnOnce(&CommandKey) -> Result<Option<R>, E>,
    ) -> Result<bool, E> {
        let (reply, pending) = match self.decided.get(key) {
            Some(r) => (r.clone(), Some(key.id.clone())),
            None => match recorded(key)? {
                Some(r) => (r, None),
                None => return Ok(false),
            },
        };
        self.answers.push(Answer {
            device: key.device.clone(),
            reply,
            pending,
        });
        Ok(true)
    }

    /// A command decided in this batch (accepted or rejected): its reply is recorded with the
    /// batch and sent once the batch is committed.
    pub fn decided(&mut self, key: CommandKey, reply: R) {
        self.answers.push(Answer {
            device: key.device.clone(),
            reply: reply.clone(),
            pending: Some(key.id.clone()),
        });
        self.decided.insert(key, reply);
        self.recorded += 1;
    }

    /// An answer that records nothing (a refusal before the rule applies, a query): sent
    /// whatever becomes of the batch.
    pub fn answer(&mut self, device: &str, reply: R) {
        self.answers.push(Answer {
            device: device.to_owned(),
            reply,
            pending: None,
        });
    }

    /// Commands decided in this batch.
    pub fn recorded(&self) -> usize {
        self.recorded
    }

    /// The batch's decisions, by key.
    pub fn decisions(&self) -> impl Iterator<Item = (&CommandKey, &R)> {
        self.decided.iter()
    }

    /// The commit failed: nothing of the batch stands. Every answer that depended on it becomes
    /// `retry(command id)` ("send it again, same id"), and the batch forgets its decisions.
    pub fn commit_failed<E>(
        &mut self,
        mut retry: impl FnMut(&str) -> Result<R, E>,
    ) -> Result<(), E> {
        for a in &mut self.answers {
            if let Some(id) = a.pending.take() {
                a.reply = retry(&id)?;
            }
        }
        self.decided.clear();
        self.recorded = 0;
        Ok(())
    }

    /// The answers, in the order their commands came.
    pub fn into_answers(self) -> Vec<Answer<R>> {
        self.answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &CommandKey) -> Result<Option<&'static str>, ()> {
        Ok(None)
    }

    #[test]
    fn a_copy_in_the_same_batch_gets_the_first_reply_and_waits_for_the_commit() {
        let mut b: Batch<&str> = Batch::default();
        let k = CommandKey::new("tab-1", "c1");
        assert!(!b.again(&k, none).unwrap());
        b.decided(k.clone(), "ok #1");
        assert!(b.again(&k, none).unwrap());
        // The same id from another device is another command.
        assert!(!b.again(&CommandKey::new("tab-2", "c1"), none).unwrap());
        let a = b.into_answers();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].reply, "ok #1");
        assert_eq!(a[1].pending.as_deref(), Some("c1"));
    }

    #[test]
    fn a_copy_of_a_committed_command_gets_its_recorded_reply_whatever_happens_to_the_batch() {
        let mut b: Batch<&str> = Batch::default();
        let k = CommandKey::new("tab-1", "c0");
        let recorded = |key: &CommandKey| -> Result<Option<&'static str>, ()> {
            Ok((key.id == "c0").then_some("ok #7"))
        };
        assert!(b.again(&k, recorded).unwrap());
        b.decided(CommandKey::new("tab-1", "c1"), "ok #8");
        b.answer("kds", "rate_limited");
        b.commit_failed(|id| Ok::<_, ()>(if id == "c1" { "retry c1" } else { "?" }))
            .unwrap();
        let a = b.into_answers();
        let replies: Vec<_> = a.iter().map(|x| x.reply).collect();
        assert_eq!(replies, ["ok #7", "retry c1", "rate_limited"]);
        assert!(a.iter().all(|x| x.pending.is_none()));
    }

    #[test]
    fn a_failed_commit_forgets_the_batchs_decisions() {
        let mut b: Batch<&str> = Batch::default();
        let k = CommandKey::new("tab-1", "c1");
        b.decided(k.clone(), "ok");
        assert_eq!(b.recorded(), 1);
        b.commit_failed(|_| Ok::<_, ()>("retry")).unwrap();
        assert_eq!(b.recorded(), 0);
        assert!(
            !b.again(&k, none).unwrap(),
            "decided anew after a failed commit"
        );
    }
}
