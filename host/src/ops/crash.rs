//! What a panic does. A panic inside a pipeline lane is contained: [`contain`] turns it into an
//! error, and the lane's owner halts the pipeline with the reason on `/readyz`. A panic anywhere
//! else (a server task, a monitor, a library thread) would leave the process half alive, so the
//! hook ends the process at once with exit code 101.

use std::any::Any;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;

use futures::FutureExt as _;

tokio::task_local! {
    /// Set while a future runs under [`contain`]: its panics are handled by its owner.
    static CONTAINED: ();
}

/// Exit code of a process ended by a panic (the code Rust uses for a panicking `main`).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Installs the process-wide panic hook: log the panic, then end the process unless the
/// panicking code runs under [`contain`].
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let message = payload_message(info.payload());
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        if CONTAINED.try_with(|()| ()).is_ok() {
            tracing::error!(panic = message.as_str(), location, thread, "process.panic_contained");
            return;
        }
        tracing::error!(panic = message.as_str(), location, thread, "process.panicked");
        // Written directly too, for commands that log nothing; a closed stderr is ignored.
        let _ = writeln!(std::io::stderr(), "error: thread '{thread}' panicked at {location}: {message}");
        std::process::exit(PANIC_EXIT_CODE);
    }));
}

/// Runs `future`, turning a panic inside it into `Err` with the panic's message.
pub async fn contain<F: Future>(future: F) -> Result<F::Output, String> {
    CONTAINED
        .scope((), AssertUnwindSafe(future).catch_unwind())
        .await
        .map_err(|payload| payload_message(payload.as_ref()))
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_contained_panic_becomes_its_message() {
        let result = contain(async { panic!("lane broke at {}", 7) }).await;
        assert_eq!(result, Err::<(), _>("lane broke at 7".to_owned()));
        assert_eq!(contain(async { 5 }).await, Ok(5));
    }
}
