//! The printer's sensors (paper end, roll near end, cover) and how it reports them: one byte per
//! DLE EOT n request, as Epson's ESC/POS reference defines (bits 1 and 4 always set).

/// What the sensors say right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sensors {
    pub paper_out: bool,
    pub near_end: bool,
    pub cover_open: bool,
}

impl Sensors {
    /// The printer cannot print: paper end or cover open.
    pub fn offline(&self) -> bool {
        self.paper_out || self.cover_open
    }

    /// The answer to DLE EOT `n` (1 printer, 2 offline cause, 3 error cause, 4 roll paper).
    pub fn answer(&self, n: u8) -> u8 {
        const BASE: u8 = 0x12;
        let bit = |on: bool, mask: u8| if on { mask } else { 0 };
        match n {
            1 => BASE | bit(self.offline(), 0x08),
            2 => {
                BASE | bit(self.cover_open, 0x04)
                    | bit(self.paper_out, 0x20)
                    | bit(self.offline(), 0x40)
            }
            // No mechanical, autocutter or unrecoverable error is ever simulated.
            3 => BASE,
            // The near-end sensor also sees an empty roll.
            4 => BASE | bit(self.near_end || self.paper_out, 0x0C) | bit(self.paper_out, 0x60),
            _ => BASE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use escpos::utils::{RealTimeStatusRequest as Req, RealTimeStatusResponse as Resp};

    fn parse(s: Sensors, req: Req) -> std::collections::HashMap<Resp, bool> {
        let (n, _) = req.into();
        Resp::parse(req, s.answer(n)).expect("escpos accepts the answer's pattern")
    }

    #[test]
    fn answers_parse_with_escpos_for_every_state() {
        let ok = Sensors::default();
        let out = Sensors {
            paper_out: true,
            ..ok
        };
        let near = Sensors {
            near_end: true,
            ..ok
        };
        let cover = Sensors {
            cover_open: true,
            ..ok
        };
        for s in [ok, out, near, cover] {
            let p = parse(s, Req::Printer);
            assert_eq!(p[&Resp::Online], !s.offline(), "{s:?}");
            let o = parse(s, Req::OfflineCause);
            assert_eq!(o[&Resp::CoverClosed], !s.cover_open, "{s:?}");
            assert_eq!(o[&Resp::PrintingStopsDueToPaperEnd], s.paper_out, "{s:?}");
            assert_eq!(o[&Resp::ErrorOccurred], s.offline(), "{s:?}");
            let e = parse(s, Req::ErrorCause);
            assert!(e.values().all(|v| !v), "{s:?}: no error cause");
            let r = parse(s, Req::RollPaperSensor);
            assert_eq!(
                r[&Resp::RollPaperNearEndSensorPaperAdequate],
                !s.near_end && !s.paper_out,
                "{s:?}"
            );
            assert_eq!(
                r[&Resp::RollPaperEndSensorPaperPresent],
                !s.paper_out,
                "{s:?}"
            );
        }
        assert_eq!(ok.answer(1), 0x12);
        assert_eq!(out.answer(4), 0x7E);
    }
}
