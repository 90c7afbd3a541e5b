//! A tracing subscriber for tests: keeps every event as a `message key=value ...` line, and
//! can panic on an event whose message contains a needle (a hostile subscriber is user code).

use std::fmt::Write;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct Capture {
    lines: Arc<Mutex<Vec<String>>>,
    panic_on: Option<&'static str>,
}

impl Capture {
    /// A subscriber that panics on the event whose message contains `needle`.
    pub fn panicking_on(needle: &'static str) -> Capture {
        Capture {
            panic_on: Some(needle),
            ..Capture::default()
        }
    }

    /// Every event seen so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

struct Line<'a>(&'a mut String);

impl tracing::field::Visit for Line<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = String::new();
        event.record(&mut Line(&mut line));
        let hit = self.panic_on.is_some_and(|n| line.contains(n));
        self.lines.lock().unwrap().push(line);
        if hit && !std::thread::panicking() {
            panic!("attack: tracing subscriber panics on {:?}", self.panic_on);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
