//! A progress line for long operator commands: a spinner with what is happening and the time
//! it has taken, drawn on standard error only when that is a terminal (indicatif hides it
//! otherwise), so scripts and logs see only the commands' results.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A running progress line; cleared when finished or dropped.
pub(super) struct Progress(ProgressBar);

impl Progress {
    /// Starts a line saying `message`.
    pub(super) fn start(message: impl Into<String>) -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(bar)
    }

    /// Says `message` instead.
    pub(super) fn set(&self, message: impl Into<String>) {
        self.0.set_message(message.into());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
