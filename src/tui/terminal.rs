//! The terminal: setup and restore, and one stream of inputs for the app.
//!
//! [`Terminal::start`] enters the alternate screen in raw mode with
//! bracketed paste and mouse reporting (for the wheel), and installs a panic
//! hook that undoes all of it before the panic message prints. Dropping the
//! [`Terminal`] restores the terminal too, so every exit path (a clean
//! `/quit`, an error returned with `?`, a panic) leaves the shell usable.
//!
//! [`run`] is the event loop: `select!` over the terminal's crossterm
//! `EventStream`, the network's [`NetEvent`]s, the client's connection
//! ending, a tick timer that runs only while something animates, and a
//! timer for the next step the step delay holds back. Every input goes
//! through [`App::update`]; a frame is drawn only when an update says
//! something changed, at most once per frame interval. Idle, nothing
//! wakes the loop but input.

use std::future::Future;
use std::io;
use std::time::Duration;

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste, EnableFocusChange,
    EnableMouseCapture, Event as TermEvent, EventStream, KeyEventKind, MouseEventKind,
};
use crossterm::execute;
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use crate::net::{Intent, NetEvent, StepGate};
use crate::store::pins::Question;
use crate::tui::app::{App, Level, Local, Msg, Now};

/// How often the spinner turns while the handshake is under way.
pub const TICK: Duration = Duration::from_millis(100);

/// The shortest time between two frames (60 fps).
pub const FRAME: Duration = Duration::from_micros(16_667);

/// The terminal in TUI mode; restored on drop.
#[derive(Debug)]
pub struct Terminal {
    inner: DefaultTerminal,
}

/// Leaves the modes [`Terminal::start`] entered beyond ratatui's own.
fn leave_modes() {
    let _ = execute!(io::stdout(), DisableMouseCapture, DisableBracketedPaste, DisableFocusChange);
}

impl Terminal {
    /// Raw mode, alternate screen, bracketed paste, mouse wheel; and a panic
    /// hook that restores all of it.
    pub(crate) fn start() -> io::Result<Self> {
        let inner = ratatui::try_init()?;
        // Our hook runs first, then ratatui's (raw mode, alternate screen),
        // then the original one that prints the panic.
        let ratatui_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            leave_modes();
            ratatui_hook(info);
        }));
        execute!(io::stdout(), EnableBracketedPaste, EnableMouseCapture, EnableFocusChange)?;
        Ok(Self { inner })
    }

    /// Draws `app` (with its first-contact dialog, if one is open) and
    /// places the cursor.
    pub(crate) fn draw(&mut self, app: &App) -> io::Result<()> {
        self.inner.draw(|frame| {
            let area = frame.area();
            frame.render_widget(app, area);
            if let Some(position) = crate::tui::ui::cursor_position(app, area) {
                frame.set_cursor_position(position);
            }
        })?;
        Ok(())
    }

    /// The bare view: leaves the alternate screen and the mouse (so the
    /// terminal selects text itself) and prints `lines` on the main
    /// screen, where the terminal wraps them softly and copies each whole.
    /// Raw mode stays, so the next key press comes back to [`run`].
    pub(crate) fn bare(&mut self, lines: &[String]) -> io::Result<()> {
        use crossterm::terminal::LeaveAlternateScreen;
        use std::io::Write;
        // Below what the main screen showed: the shell's lines stay.
        execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen)?;
        let mut out = io::stdout().lock();
        write!(out, "\r\n")?;
        for line in lines {
            write!(out, "{line}\r\n")?;
        }
        write!(out, "-- bare view: select and copy with the mouse; any key returns --\r\n")?;
        out.flush()
    }

    /// Back from the bare view to the full screen.
    pub(crate) fn resume(&mut self) -> io::Result<()> {
        use crossterm::terminal::EnterAlternateScreen;
        execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
        self.inner.clear()
    }

    /// Rings the terminal's bell (a mention).
    pub(crate) fn bell(&mut self) {
        use std::io::Write;
        let mut out = io::stdout();
        let _ = out.write_all(b"\x07").and_then(|()| out.flush());
    }

    /// The terminal's size.
    pub(crate) fn size(&self) -> io::Result<(u16, u16)> {
        let size = self.inner.size()?;
        Ok((size.width, size.height))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        leave_modes();
        ratatui::restore();
    }
}

/// Where a TUI's intents go: a client's connection (and its step gate,
/// with `--step`), or a room's host seat, whose [`Intent::Close`] shuts
/// the room instead.
#[derive(Debug)]
pub struct Link {
    intents: mpsc::Sender<Intent>,
    step: Option<mpsc::Sender<()>>,
    shutdown: Option<watch::Sender<bool>>,
}

impl Link {
    /// A client's: its connection's intents, and the step gate's opener.
    pub(crate) fn client(intents: mpsc::Sender<Intent>, step: Option<mpsc::Sender<()>>) -> Self {
        Self { intents, step, shutdown: None }
    }

    /// A room's: the host's seat says and asks; quitting shuts the room.
    pub(crate) fn room(host: mpsc::Sender<Intent>, shutdown: watch::Sender<bool>) -> Self {
        Self { intents: host, step: None, shutdown: Some(shutdown) }
    }

    /// Hands `intent` on; false if it could not be queued.
    fn send(&self, intent: Intent) -> bool {
        match (&intent, &self.shutdown) {
            (Intent::Close, Some(shutdown)) => shutdown.send(true).is_ok(),
            _ => self.intents.try_send(intent).is_ok(),
        }
    }

    /// Sends the handshake flight `--step` holds; false if nothing can (a
    /// room never holds flights: `--step` is a client's).
    fn release(&self) -> bool {
        self.step.as_ref().is_some_and(|go| go.try_send(()).is_ok())
    }
}

/// What the chat pane says when `intent` could not be handed to the
/// network (the connection is over, or too much waits).
fn not_sent(intent: &Intent) -> &'static str {
    match intent {
        Intent::Who => "/who not sent: the connection is over",
        Intent::KeyUpdate { .. } => "KeyUpdate not sent: nobody is connected, or the connection is not ready",
        Intent::Tamper(_) => "not done: the connection is over, or /tamper is not for a room's host",
        _ => "not done: the connection is over, or too much is waiting",
    }
}

/// The terminal event as the app's message, if it is one the app wants:
/// only key presses (not releases or repeats on terminals that report
/// them), pastes, the wheel and resizes.
pub fn message(event: TermEvent) -> Option<Msg> {
    match event {
        TermEvent::Key(key) if key.kind == KeyEventKind::Press => Some(Msg::Key(key)),
        TermEvent::Paste(text) => Some(Msg::Paste(text)),
        TermEvent::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Msg::Wheel(1)),
            MouseEventKind::ScrollDown => Some(Msg::Wheel(-1)),
            _ => None,
        },
        TermEvent::Resize(width, height) => Some(Msg::Resize { width, height }),
        TermEvent::FocusLost => Some(Msg::Focus(false)),
        TermEvent::FocusGained => Some(Msg::Focus(true)),
        _ => None,
    }
}

/// Our lines on their way to the network at a pace a room accepts (its
/// relay refuses a member who posts more than 20 at once or 5 a second):
/// up to `Pacer::BURST` at once, then one per `Pacer::EVERY`. Typed
/// lines never wait; a long paste is spread out instead of refused.
#[derive(Debug)]
pub struct Pacer {
    /// [`Intent::Say`]s.
    queue: std::collections::VecDeque<Intent>,
    /// Sending credit, up to `BURST` lines' worth, as of `at`.
    credit: Duration,
    at: Option<Instant>,
}

impl Default for Pacer {
    fn default() -> Self {
        Self { queue: std::collections::VecDeque::new(), credit: Self::EVERY * Self::BURST, at: None }
    }
}

impl Pacer {
    /// Lines that go at once.
    pub(crate) const BURST: u32 = 10;
    /// Then one line per this.
    pub(crate) const EVERY: Duration = Duration::from_millis(250);

    /// Queues `said` (an [`Intent::Say`]) behind the lines already waiting.
    pub(crate) fn push(&mut self, said: Intent) {
        self.queue.push_back(said);
    }

    /// The next line to send at `now`, if one waits and its turn has come.
    pub(crate) fn due(&mut self, now: Instant) -> Option<Intent> {
        let earned = self.at.map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.credit = (self.credit + earned).min(Self::EVERY * Self::BURST);
        self.at = Some(now);
        if self.queue.is_empty() || self.credit < Self::EVERY {
            return None;
        }
        self.credit -= Self::EVERY;
        self.queue.pop_front()
    }

    /// When the next waiting line's turn comes; `None` when none waits.
    pub(crate) fn next(&self) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        let at = self.at.unwrap_or_else(Instant::now);
        Some(at + Self::EVERY.saturating_sub(self.credit))
    }

    /// Drops what waits; returns how many lines that was.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }
}

/// How long [`run`] waits for the network to finish closing after `/quit`.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Runs the TUI until the user quits: draws `app`, feeds it terminal input,
/// `events` from the network and `ended` (the client connection's result;
/// pass a future that never resolves for a server), and hands the intents
/// its updates return to `link`. After `/quit` it waits (briefly) for
/// `ended` so that close_notify goes out before the terminal is restored.
/// A first-contact [`Question`] from `questions` goes to the app
/// ([`Msg::Question`]), whose dialog takes the keys until it is answered;
/// the next question is taken then.
pub async fn run<E>(
    mut app: App,
    mut events: mpsc::Receiver<NetEvent>,
    ended: E,
    link: Link,
    mut questions: Option<mpsc::Receiver<Question>>,
) -> io::Result<Option<String>>
where
    E: Future<Output = Option<String>>,
{
    let mut signals = Signals::new()?;
    let mut terminal = Terminal::start()?;
    let (width, height) = terminal.size()?;
    let _ = app.update(Msg::Resize { width, height }, Now::system());
    let mut input = EventStream::new();
    let mut input_open = true;
    let mut tick = interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut ended = std::pin::pin!(ended);
    let mut connection_over = false;
    let mut failure = None;
    let mut events_open = true;
    let mut dirty = true;
    let mut next_frame = Instant::now();
    let mut quit_deadline: Option<Instant> = None;
    let mut pacer = Pacer::default();
    // In the bare view (Alt-L) nothing is drawn until a key returns; nor
    // once the terminal is gone.
    let mut bare = false;
    loop {
        while let Some(said) = pacer.due(Instant::now()) {
            if !link.send(said) {
                let lines = 1 + pacer.clear();
                let reason = "not sent: the connection is over, or too much is waiting to be sent".to_owned();
                let _ = app.update(Msg::NotSent { lines, reason }, Now::system());
                dirty = true;
            }
        }
        if dirty && !bare && Instant::now() >= next_frame {
            match terminal.draw(&app) {
                Ok(()) => {}
                // The terminal closed (SIGHUP): no more frames, but the
                // connection still closes with close_notify below.
                Err(_) if signals.caught => bare = true,
                Err(e) => return Err(e),
            }
            dirty = false;
            next_frame = Instant::now() + FRAME;
        }
        let animating = app.animating();
        let delayed = app.next_delayed().map(Instant::from_std);
        let msg = tokio::select! {
            event = input.next(), if input_open => match event {
                Some(Ok(event)) => message(event),
                // The terminal is gone (closed, or its input failed): close
                // the connection politely all the same, as on SIGHUP.
                Some(Err(_)) | None => {
                    input_open = false;
                    signals.caught = true;
                    Some(Msg::Signal("the terminal's input ended"))
                }
            },
            event = events.recv(), if events_open => match event {
                Some(event) => Some(Msg::Net(event)),
                None => {
                    events_open = false;
                    None
                }
            },
            result = &mut ended, if !connection_over => {
                connection_over = true;
                failure.clone_from(&result);
                Some(Msg::Ended(result))
            },
            _ = tick.tick(), if animating => Some(Msg::Tick),
            () = sleep_until(delayed.unwrap_or_else(Instant::now)), if delayed.is_some() => Some(Msg::Tick),
            () = sleep_until(next_frame), if dirty && !bare => None,
            () = sleep_until(pacer.next().unwrap_or_else(Instant::now)), if pacer.next().is_some() => None,
            () = sleep_until(quit_deadline.unwrap_or_else(Instant::now)), if quit_deadline.is_some() => break,
            signal = signals.next() => Some(Msg::Signal(signal)),
            question = next_question(&mut questions), if !app.asking() => question.map(Msg::Question),
        };
        let Some(msg) = msg else { continue };
        if let (true, Msg::Key(_)) = (bare, &msg) {
            terminal.resume()?;
            bare = false;
            dirty = true;
            continue;
        }
        let update = app.update(msg, Now::system());
        dirty |= update.redraw;
        if update.bell {
            terminal.bell();
        }
        match update.local {
            Some(Local::Release) if !link.release() => {
                let text = "nothing to send: the connection is over".to_owned();
                let _ = app.update(Msg::Notice { level: Level::Error, text }, Now::system());
                dirty = true;
            }
            Some(Local::Release) | None => {}
            Some(Local::Bare) => {
                let (_, rows) = terminal.size()?;
                let lines = crate::tui::ui::plain_lines(&app, usize::from(rows.saturating_sub(2)).max(1));
                terminal.bare(&lines)?;
                bare = true;
            }
        }
        let mut quit_now = false;
        for intent in update.intents {
            match intent {
                Intent::Say { .. } => pacer.push(intent),
                Intent::Close => {
                    let _ = link.send(Intent::Close);
                    quit_now = connection_over;
                    quit_deadline.get_or_insert_with(|| Instant::now() + CLOSE_GRACE);
                }
                intent => {
                    let text = not_sent(&intent).to_owned();
                    if !link.send(intent) {
                        let _ = app.update(Msg::Notice { level: Level::Error, text }, Now::system());
                        dirty = true;
                    }
                }
            }
        }
        if quit_now {
            break;
        }
        if app.quitting && connection_over {
            break;
        }
    }
    // Show the last state (closing…) once; then the terminal is restored by drop.
    if !bare {
        let last = terminal.draw(&app);
        if !signals.caught {
            last?;
        }
    }
    drop(terminal);
    Ok(failure)
}

/// SIGTERM and SIGHUP (the terminal closed), taken while the TUI runs so
/// that they end it as `/quit` does: close_notify, then the terminal
/// restored (main screen, no mouse reporting, cooked mode) before exiting.
/// Without this their default action kills the process in raw mode.
struct Signals {
    term: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
    /// Whether one came (or the terminal's input ended): the terminal may
    /// be gone, so drawing may fail.
    caught: bool,
}

impl Signals {
    fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
            caught: false,
        })
    }

    /// The next signal's name. Cancel-safe.
    async fn next(&mut self) -> &'static str {
        let name = tokio::select! {
            Some(()) = self.term.recv() => "SIGTERM",
            Some(()) = self.hangup.recv() => "SIGHUP",
            else => std::future::pending().await,
        };
        self.caught = true;
        name
    }
}

/// The next first-contact question; never, once there are no more. Cancel-safe.
async fn next_question(questions: &mut Option<mpsc::Receiver<Question>>) -> Option<Question> {
    let question = match questions {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    };
    if question.is_none() {
        *questions = None;
    }
    question
}

/// Whether to run the TUI: stdout is a terminal and `--headless` was not given.
pub fn wanted(headless: bool) -> bool {
    use std::io::IsTerminal;
    !headless && io::stdout().is_terminal() && io::stdin().is_terminal()
}

/// The teaching pace of a client's TUI.
#[derive(Debug, Default)]
pub struct Pace {
    /// `--step-delay`: the panel shows one handshake message per this much.
    pub(crate) step_delay: Duration,
    /// `--step`: opens the [`StepGate`] given to net's `connect`, one
    /// flight per Space.
    pub(crate) step: Option<mpsc::Sender<()>>,
}

impl Pace {
    /// The pace for `--step-delay` and `--step`; with `step`, also the gate
    /// to give to net's `connect`.
    pub(crate) fn new(step_delay: Duration, step: bool) -> (Self, Option<StepGate>) {
        if !step {
            return (Self { step_delay, step: None }, None);
        }
        let (go, gate) = crate::net::step_gate();
        (Self { step_delay, step: Some(go) }, Some(gate))
    }
}

/// The user's choices for the interface besides the connection itself.
#[derive(Debug, Clone, Copy)]
pub struct Prefs {
    /// Whether mentions ring the terminal's bell.
    pub(crate) bell: bool,
    /// `--reveal`: the session's secret values are shown.
    pub(crate) reveal: bool,
    /// How times are shown: local, or UTC with `--utc`.
    pub(crate) clock: crate::tui::app::Clock,
    /// The room is end to end (`listen --e2e`): its header says so.
    pub(crate) e2e_room: bool,
}

/// `tlschat connect` (and `demo`) in the TUI: `session` is net's `connect`
/// future, which reads `intents` and reports on `events`; `peer` names the
/// server for the status bar; `questions` brings first-contact questions
/// from `crate::store::pins::gate`. Returns why the connection failed, if it
/// did, once the user has quit.
pub async fn run_client<S, E>(
    peer: String,
    session: S,
    events: mpsc::Receiver<NetEvent>,
    intents: mpsc::Sender<Intent>,
    pace: Pace,
    questions: Option<mpsc::Receiver<Question>>,
    prefs: Prefs,
) -> io::Result<Option<String>>
where
    S: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut app = App::new(crate::tui::app::color_allowed())
        .with_step_delay(pace.step_delay)
        .with_bell(prefs.bell)
        .with_reveal(prefs.reveal)
        .with_clock(prefs.clock);
    let _ = app.update(Msg::Started { peer, state: "connecting".into(), server: false }, Now::system());
    let ended = async move { session.await.err().map(|e| e.to_string()) };
    run(app, events, ended, Link::client(intents, pace.step), questions).await
}

/// How long a room's connections get to exchange close_notify on quit.
const ROOM_CLOSE: Duration = Duration::from_millis(500);

/// `tlschat listen` in the TUI: `about` lines (how to join) are shown
/// first; `host` is the host's seat (see `net::Host`), `shutdown` the room's.
pub async fn run_room(
    local: String,
    about: &str,
    room_key: String,
    events: mpsc::Receiver<NetEvent>,
    host: mpsc::Sender<Intent>,
    shutdown: watch::Sender<bool>,
    prefs: Prefs,
) -> io::Result<()> {
    let mut app = App::new(crate::tui::app::color_allowed())
        .with_bell(prefs.bell)
        .with_reveal(prefs.reveal)
        .with_clock(prefs.clock)
        .with_room_key(room_key)
        .with_e2e_room(prefs.e2e_room);
    let now = Now::system();
    let _ = app.update(Msg::Started { peer: local, state: "listening".into(), server: true }, now);
    for text in about.lines() {
        let _ = app.update(Msg::Notice { level: Level::Info, text: text.to_owned() }, now);
    }
    let mut closed = shutdown.subscribe();
    let ended = async move {
        let _ = closed.wait_for(|closing| *closing).await;
        tokio::time::sleep(ROOM_CLOSE).await;
        None
    };
    run(app, events, ended, Link::room(host, shutdown), None).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::chat::Kind;

    fn line(n: usize) -> Intent {
        Intent::Say { kind: Kind::Text, text: format!("line {n}"), to: None }
    }

    #[test]
    fn the_pacer_sends_a_burst_at_once_then_one_line_per_interval_in_order() {
        let start = Instant::now();
        let mut pacer = Pacer::default();
        assert_eq!(pacer.next(), None, "nothing waits");
        for n in 0..30 {
            pacer.push(line(n));
        }
        let mut sent = Vec::new();
        while let Some(said) = pacer.due(start) {
            sent.push(said);
        }
        assert_eq!(sent.len(), Pacer::BURST as usize);
        // Then one per interval, each when `next` says.
        for _ in 0..5 {
            let at = pacer.next().expect("lines wait");
            assert!(pacer.due(at - Duration::from_millis(1)).is_none(), "not before its turn");
            sent.push(pacer.due(at).expect("its turn"));
        }
        assert_eq!(sent, (0..15).map(line).collect::<Vec<_>>());
        assert_eq!(pacer.clear(), 15);
        assert_eq!(pacer.next(), None);
    }
}
