//! The delivery rule of the stream, as a pure function so it can be
//! checked exhaustively (see the proptest below): a connection remembers
//! the last `seq` it sent; the store holds every event before it is
//! published; the live channel is a bounded fast path that may lag.

/// What a connection does with what the live channel gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveStep {
    /// Already sent (replay and live overlap): drop it.
    Skip,
    /// The very next event: send it.
    Send,
    /// Out of step (the channel lagged, or skipped ahead): read everything
    /// after the last sent `seq` from the store instead.
    CatchUp,
}

/// `live` is the seq the channel delivered, or None when it reported lag.
pub fn on_live(sent: i64, live: Option<i64>) -> LiveStep {
    match live {
        Some(seq) if seq <= sent => LiveStep::Skip,
        Some(seq) if seq == sent + 1 => LiveStep::Send,
        _ => LiveStep::CatchUp,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    /// What can happen next in the model.
    #[derive(Debug, Clone)]
    enum Op {
        /// A writer commits an event and publishes it.
        Commit,
        /// Two commits whose publications arrive swapped: what the relay's
        /// write lock prevents, and what the rule must survive anyway.
        CommitSwapped,
        /// The connection takes one item from its live channel.
        Deliver,
        /// The connection drops; the client reconnects with `since`.
        Cut,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Commit),
            1 => Just(Op::CommitSwapped),
            4 => Just(Op::Deliver),
            1 => Just(Op::Cut),
        ]
    }

    /// One connection of the model: its channel (bounded, lagging like
    /// tokio's broadcast) and the `sent` watermark.
    struct Connection {
        sent: i64,
        channel: VecDeque<i64>,
        lagged: bool,
    }

    impl Connection {
        /// Subscribe first, then replay from the store (as the relay does).
        fn open(since: i64, log: &[i64], client: &mut Vec<i64>) -> Connection {
            let mut c = Connection {
                sent: since,
                channel: VecDeque::new(),
                lagged: false,
            };
            c.catch_up(log, client);
            c
        }

        fn catch_up(&mut self, log: &[i64], client: &mut Vec<i64>) {
            let after = self.sent;
            for &seq in log.iter().filter(|&&s| s > after) {
                client.push(seq);
                self.sent = seq;
            }
        }

        fn publish(&mut self, seq: i64, capacity: usize) {
            if self.channel.len() == capacity {
                self.channel.pop_front();
                self.lagged = true;
            }
            self.channel.push_back(seq);
        }

        fn deliver(&mut self, log: &[i64], client: &mut Vec<i64>) {
            let live = if self.lagged {
                self.lagged = false;
                None
            } else {
                match self.channel.pop_front() {
                    Some(seq) => Some(seq),
                    None => return,
                }
            };
            match on_live(self.sent, live) {
                LiveStep::Skip => {}
                LiveStep::Send => {
                    let seq = live.expect("Send only for a delivered seq");
                    client.push(seq);
                    self.sent = seq;
                }
                LiveStep::CatchUp => self.catch_up(log, client),
            }
        }
    }

    proptest! {
        /// Whatever the interleaving of commits, lagging channels and cut
        /// connections, the client ends with every event once, in order.
        #[test]
        fn every_event_once_in_order(ops in proptest::collection::vec(op(), 1..300), capacity in 1usize..8) {
            let mut log: Vec<i64> = Vec::new();
            let mut client: Vec<i64> = Vec::new();
            let mut conn = Connection::open(0, &log, &mut client);
            for op in ops {
                match op {
                    Op::Commit => {
                        let seq = log.len() as i64 + 1;
                        log.push(seq);
                        conn.publish(seq, capacity);
                    }
                                        Op::CommitSwapped => {
                        let first = log.len() as i64 + 1;
                        log.extend([first, first + 1]);
                        conn.publish(first + 1, capacity);
                        conn.publish(first, capacity);
                    }
                    Op::Deliver => conn.deliver(&log, &mut client),
                    Op::Cut => {
                        // The client resumes from the last seq it holds.
                        let since = client.last().copied().unwrap_or(0);
                        conn = Connection::open(since, &log, &mut client);
                    }
                }
                // At every moment: what the client has is a gap-free prefix.
                let expected: Vec<i64> = (1..=client.len() as i64).collect();
                prop_assert_eq!(&client, &expected);
            }
            // Drain: everything committed arrives.
            while !conn.channel.is_empty() || conn.lagged {
                conn.deliver(&log, &mut client);
            }
            conn.catch_up(&log, &mut client);
            prop_assert_eq!(client, log);
        }
    }

    #[test]
    fn the_rule() {
        assert_eq!(on_live(5, Some(3)), LiveStep::Skip);
        assert_eq!(on_live(5, Some(5)), LiveStep::Skip);
        assert_eq!(on_live(5, Some(6)), LiveStep::Send);
        assert_eq!(on_live(5, Some(8)), LiveStep::CatchUp);
        assert_eq!(on_live(5, None), LiveStep::CatchUp);
    }
}
