import { useEffect, useId, useRef, useState } from 'react';
import type { Attachments } from '../hooks/useAttachments';
import { MAX_ATTACHMENTS } from '../lib/attachments';
import { checkContent, MAX_CONTENT_CODE_POINTS } from '../lib/text';
import type { PendingAttachment } from '../lib/v2client';
import { PendingFiles } from './PendingFiles';

export interface ComposerProps {
  canSend: boolean;
  /** Send the text (with the uploaded files, when there are `files`); false keeps the draft. */
  onSend: (content: string, attachments?: readonly PendingAttachment[]) => boolean;
  max?: number;
  /** The text changed (v2: typing indicators). */
  onTextChange?: (text: string) => void;
  onBlur?: () => void;
  /**
   * Files for the message (v2 Rooms): an Attach button, a chip per file with its upload
   * progress; Send waits for the uploads and takes the uploaded files (the text may then
   * be empty).
   */
  files?: Attachments;
}

export function Composer({ canSend, onSend, max = MAX_CONTENT_CODE_POINTS, onTextChange, onBlur, files }: ComposerProps) {
  const [text, setText] = useState('');
  const id = useId();
  const ref = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  // Put the caret in the composer once connected (not on touch screens, where it would pop the keyboard).
  useEffect(() => {
    if (canSend && ref.current && document.activeElement === document.body && window.matchMedia?.('(pointer: fine)').matches) ref.current.focus();
  }, [canSend]);
  const check = checkContent(text, max);
  const ready = files?.ready ?? [];
  // with files, a message may have no words
  const textOk = check.ok || (check.reason === 'empty' && ready.length > 0);
  const enabled = canSend && textOk && !files?.busy;

  const submit = () => {
    if (!enabled) return;
    const content = check.reason === 'empty' ? '' : text;
    const ok = files ? onSend(content, ready) : onSend(content);
    if (!ok) return;
    setText('');
    files?.sent();
  };

  const counterClass = check.count > max ? 'counter over' : check.remaining <= 100 ? 'counter near' : 'counter';
  const full = files ? files.files.filter((f) => f.state !== 'error').length >= MAX_ATTACHMENTS : false;
  return (
    <form
      className={`composer${files ? ' composer-files' : ''}`}
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      {files && <PendingFiles files={files} />}
      {files && (
        <>
          <input
            ref={picker}
            type="file"
            multiple
            hidden
            data-testid="attach-input"
            aria-hidden="true"
            tabIndex={-1}
            onChange={(e) => {
              const picked = Array.from(e.target.files ?? []);
              // the same file may be picked again later
              e.target.value = '';
              files.add(picked);
            }}
          />
          <button
            type="button"
            className="btn btn-ghost composer-attach"
            data-testid="attach"
            disabled={full}
            title={full ? `At most ${MAX_ATTACHMENTS} files per message` : 'Attach files (or drop them on the room)'}
            aria-label="Attach files"
            onClick={() => picker.current?.click()}
          >
            Attach
          </button>
        </>
      )}
      <label htmlFor={`${id}-input`} className="sr-only">
        Message
      </label>
      <textarea
        id={`${id}-input`}
        ref={ref}
        data-testid="composer"
        value={text}
        rows={1}
        placeholder={canSend ? 'Write a message…' : 'Waiting for the connection…'}
        title="Enter sends, Shift+Enter adds a new line"
        aria-describedby={`${id}-counter`}
        aria-invalid={check.reason === 'too_long' ? true : undefined}
        onChange={(e) => {
          setText(e.target.value);
          onTextChange?.(e.target.value);
        }}
        onBlur={onBlur}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            submit();
          }
        }}
      />
      <div className="composer-side">
        <span id={`${id}-counter`} className={counterClass} data-testid="counter" aria-live={check.count > max ? 'polite' : 'off'}>
          {check.count > max ? `${check.count - max} over the ${max} limit` : `${check.count}/${max}`}
        </span>
        <button type="submit" className="btn btn-primary" data-testid="send" disabled={!enabled} title={files?.busy ? 'Waiting for the uploads to finish' : undefined}>
          Send
        </button>
      </div>
    </form>
  );
}
