import { useCallback, useEffect, useRef, useState } from 'react';
import { MAX_ATTACHMENTS } from '../lib/attachments';
import { uploadErrorText, uploadFile, UploadError, type UploadedFile, type UploadOptions } from '../lib/uploads';
import type { PendingAttachment } from '../lib/v2client';

export type PendingFileState = 'uploading' | 'done' | 'error';

/** A file picked or dropped for the next message. */
export interface PendingFile {
  /** Local id (the chip's key). */
  key: string;
  name: string;
  contentType: string;
  size: number;
  state: PendingFileState;
  /** Bytes sent so far. */
  loaded: number;
  /** The server's id once uploaded. */
  fileId: string | null;
  /** What went wrong, in words ("cat.bmp: this type of file is not accepted"). */
  error: string | null;
  errorCode: string | null;
}

export interface Attachments {
  files: PendingFile[];
  /** Some upload is still under way (Send waits). */
  busy: boolean;
  /** The uploaded files, for the message. */
  ready: PendingAttachment[];
  /** A note about files not taken (over the per-message limit). */
  notice: string | null;
  /** Upload these (picked, or dropped on the room). */
  add: (files: readonly File[]) => void;
  /** Take one back (an upload under way is cancelled). */
  remove: (key: string) => void;
  /** The message went: the uploaded files (and failed ones) leave the composer. */
  sent: () => void;
}

export type Uploader = (http: string, roomId: string, file: File, o: UploadOptions) => Promise<UploadedFile>;

let keyCounter = 0;

/** Percent uploaded (0–100), for the progress bar. */
export function percentOf(f: Pick<PendingFile, 'loaded' | 'size' | 'state'>): number {
  if (f.state === 'done') return 100;
  if (f.size <= 0) return 0;
  return Math.max(0, Math.min(100, Math.floor((f.loaded / f.size) * 100)));
}

/**
 * The files of the next message in `roomId`: each is uploaded as soon as it is added
 * (lib/uploads.ts), with its progress; the message takes the uploaded ones. Another
 * room (or unmounting) cancels what is under way and starts empty.
 */
export function useAttachments(http: string, roomId: string | null, upload: Uploader = uploadFile): Attachments {
  const [files, setFiles] = useState<PendingFile[]>([]);
  const [notice, setNotice] = useState<string | null>(null);
  const filesRef = useRef(files);
  filesRef.current = files;
  const controllers = useRef(new Map<string, AbortController>());
  const uploadRef = useRef(upload);
  uploadRef.current = upload;
  const where = useRef({ http, roomId });
  where.current = { http, roomId };

  useEffect(
    () => () => {
      for (const c of controllers.current.values()) c.abort();
      controllers.current.clear();
      setFiles([]);
      setNotice(null);
    },
    [http, roomId],
  );

  const patch = useCallback((key: string, change: Partial<PendingFile>) => {
    setFiles((fs) => (fs.some((f) => f.key === key) ? fs.map((f) => (f.key === key ? { ...f, ...change } : f)) : fs));
  }, []);

  const add = useCallback(
    (picked: readonly File[]) => {
      const { http, roomId } = where.current;
      if (!roomId || picked.length === 0) return;
      const room = MAX_ATTACHMENTS - filesRef.current.filter((f) => f.state !== 'error').length;
      const taken = picked.slice(0, Math.max(0, room));
      const left = picked.slice(taken.length);
      setNotice(left.length ? `At most ${MAX_ATTACHMENTS} files per message: ${left.map((f) => f.name).join(', ')} not added.` : null);
      if (taken.length === 0) return;
      const added: PendingFile[] = taken.map((f) => ({
        key: `f${++keyCounter}`,
        name: f.name || 'file',
        contentType: f.type,
        size: f.size,
        state: 'uploading',
        loaded: 0,
        fileId: null,
        error: null,
        errorCode: null,
      }));
      filesRef.current = [...filesRef.current, ...added];
      setFiles((fs) => [...fs, ...added]);
      added.forEach((p, i) => {
        const ctl = new AbortController();
        controllers.current.set(p.key, ctl);
        uploadRef
          .current(http, roomId, taken[i], { signal: ctl.signal, onProgress: (loaded) => patch(p.key, { loaded }) })
          .then(
            (got) => {
              if (ctl.signal.aborted) return;
              patch(p.key, { state: 'done', fileId: got.fileId, loaded: p.size });
            },
            (e: unknown) => {
              if (ctl.signal.aborted) return;
              patch(p.key, { state: 'error', error: uploadErrorText(p.name, e), errorCode: e instanceof UploadError ? e.code : 'failed' });
            },
          )
          .finally(() => {
            if (controllers.current.get(p.key) === ctl) controllers.current.delete(p.key);
          });
      });
    },
    [patch],
  );

  const remove = useCallback((key: string) => {
    controllers.current.get(key)?.abort();
    controllers.current.delete(key);
    setFiles((fs) => fs.filter((f) => f.key !== key));
    setNotice(null);
  }, []);

  const sent = useCallback(() => {
    setFiles((fs) => fs.filter((f) => f.state === 'uploading'));
    setNotice(null);
  }, []);

  const ready: PendingAttachment[] = [];
  for (const f of files) if (f.state === 'done' && f.fileId) ready.push({ fileId: f.fileId, name: f.name });
  return { files, busy: files.some((f) => f.state === 'uploading'), ready, notice, add, remove, sent };
}
