import { percentOf, type Attachments, type PendingFile } from '../hooks/useAttachments';
import { formatSize } from '../lib/attachments';

function Chip({ f, onRemove }: { f: PendingFile; onRemove: () => void }) {
  const pct = percentOf(f);
  return (
    <li className={`pending-file st-${f.state}`} data-testid="pending-file" data-state={f.state} data-file-id={f.fileId ?? undefined} data-code={f.errorCode ?? undefined}>
      <span className="pending-file-text">
        <span className="file-name">{f.name}</span>
        <span className="muted small"> · {formatSize(f.size)}</span>
        {f.state === 'done' && (
          <span className="pending-file-ok small" aria-label="uploaded">
            {' '}
            ✓
          </span>
        )}
      </span>
      {f.state === 'uploading' && (
        <span className="progress" role="progressbar" aria-label={`Uploading ${f.name}`} aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct} data-testid="upload-progress">
          <span className="progress-fill" style={{ width: `${pct}%` }} />
        </span>
      )}
      {f.state === 'error' && (
        <span className="field-err small" role="alert" data-testid="upload-error">
          {f.error}
        </span>
      )}
      <button type="button" className="btn btn-ghost btn-xs" data-testid="pending-file-remove" aria-label={`Remove ${f.name}`} onClick={onRemove}>
        ✕
      </button>
    </li>
  );
}

/** The files of the next message: a chip each, with its progress while it uploads, or what went wrong. */
export function PendingFiles({ files }: { files: Attachments }) {
  if (files.files.length === 0 && !files.notice) return null;
  return (
    <div className="pending-files">
      {files.files.length > 0 && (
        <ul aria-label="Attachments">
          {files.files.map((f) => (
            <Chip key={f.key} f={f} onRemove={() => files.remove(f.key)} />
          ))}
        </ul>
      )}
      {files.notice && (
        <p className="field-err small" role="alert" data-testid="attach-notice">
          {files.notice}
        </p>
      )}
    </div>
  );
}
