//! The journal file the writer appends to.
//!
//! A journal is created complete-or-absent (header written to a `.tmp`, synced, renamed, directory
//! synced), so a journal under its final name always has a valid header. Appends write one frame per
//! group commit and sync it with `fdatasync` before the next frame is written; that ordering is what
//! lets recovery call any damage that no valid frame follows a torn tail (see `format`).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use crate::codec;
use crate::error::FileStoreError;
use crate::format::{self, FileKind, FRAME_HEADER, MAX_PAYLOAD};
use crate::layout::Layout;

/// An open journal, positioned at its end.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    generation: u64,
    len: u64,
}

impl Journal {
    /// Creates journal `generation`, which must not exist yet.
    pub(crate) fn create(layout: &Layout, generation: u64) -> Result<Journal, FileStoreError> {
        let path = layout.path(FileKind::Journal, generation);
        let tmp = Layout::tmp(&path);
        layout.remove(std::slice::from_ref(&tmp))?;
        let mut file = Layout::create_file(&tmp)?;
        let header = format::file_header(FileKind::Journal, generation);
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(|e| FileStoreError::io("write journal header", &tmp, e))?;
        layout.publish(&tmp, &path)?;
        Ok(Journal {
            file,
            path,
            generation,
            len: header.len() as u64,
        })
    }

    /// Opens an existing journal whose valid content ends at `len` (recovery has already cut off
    /// anything after it) for appending.
    pub(crate) fn reopen(
        layout: &Layout,
        generation: u64,
        len: u64,
    ) -> Result<Journal, FileStoreError> {
        let path = layout.path(FileKind::Journal, generation);
        let mut file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| FileStoreError::io("open journal", &path, e))?;
        file.seek(SeekFrom::Start(len))
            .map_err(|e| FileStoreError::io("seek journal", &path, e))?;
        Ok(Journal {
            file,
            path,
            generation,
            len,
        })
    }

    /// The journal's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Its size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Writes `batch` (its first [`FRAME_HEADER`] bytes reserved, then length-prefixed entries) as
    /// one frame, or as several if it exceeds [`MAX_PAYLOAD`], syncing after each frame.
    pub(crate) fn append(&mut self, batch: &mut [u8]) -> Result<(), FileStoreError> {
        if batch.len() - FRAME_HEADER <= MAX_PAYLOAD {
            format::seal(batch);
            return self.write_synced(batch);
        }
        for run in codec::split_runs(&batch[FRAME_HEADER..], MAX_PAYLOAD) {
            let mut frame = Vec::with_capacity(FRAME_HEADER + run.len());
            frame.extend_from_slice(&[0; FRAME_HEADER]);
            frame.extend_from_slice(run);
            format::seal(&mut frame);
            self.write_synced(&frame)?;
        }
        Ok(())
    }

    fn write_synced(&mut self, frame: &[u8]) -> Result<(), FileStoreError> {
        self.file
            .write_all(frame)
            .map_err(|e| FileStoreError::io("write journal", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| FileStoreError::io("sync journal", &self.path, e))?;
        self.len += frame.len() as u64;
        Ok(())
    }
}
