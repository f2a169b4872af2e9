//! The board's sink: takes every alert and board-state record, in the sinks' order, into the
//! board the server shows.

use std::io;
use std::sync::Arc;

use super::Board;
use crate::alerting::Alert;
use crate::sinks::AlertSink;

/// Feeds a [`Board`].
pub struct BoardSink {
    board: Arc<Board>,
    what: String,
}

impl BoardSink {
    /// A sink into `board`, described as `what` (`ward board http://127.0.0.1:8080`).
    pub fn new(board: Arc<Board>, what: String) -> BoardSink {
        BoardSink { board, what }
    }
}

impl AlertSink for BoardSink {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        self.board.apply(alerts);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        self.what.clone()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.board.close();
        Ok(())
    }

    fn board_state(&self) -> bool {
        true
    }
}
