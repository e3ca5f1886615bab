import { memo, useEffect, useRef, useState, type RefObject } from 'react';
import { fileLabel, formatSize, isImage, type Attachment } from '../lib/attachments';
import { fileCache, type BlobCache } from '../lib/fileBlobs';

type Load = { state: 'idle' | 'loading' } | { state: 'ready'; url: string } | { state: 'error'; code: string };

/** Whether the element is (near) the viewport: true at once where IntersectionObserver is missing. */
function useNearView(ref: RefObject<Element | null>): boolean {
  const [near, setNear] = useState(typeof IntersectionObserver === 'undefined');
  useEffect(() => {
    const el = ref.current;
    if (near || !el || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver((es) => {
      if (es.some((e) => e.isIntersecting)) setNear(true);
    }, { rootMargin: '200px 0px' });
    io.observe(el);
    return () => io.disconnect();
  }, [ref, near]);
  return near;
}

/** The object URL of a file while the view is mounted (fetched when `want` turns true, released on unmount). */
function useFileUrl(cache: BlobCache, fileId: string, want: boolean): Load {
  const [load, setLoad] = useState<Load>({ state: 'idle' });
  useEffect(() => {
    if (!want) return;
    let live = true;
    // a failed acquire holds nothing: releasing it would take another view's reference
    let held = true;
    setLoad({ state: 'loading' });
    cache.acquire(fileId).then(
      (url) => live && setLoad({ state: 'ready', url }),
      (e: unknown) => {
        held = false;
        if (live) setLoad({ state: 'error', code: (e as { code?: string })?.code ?? 'failed' });
      },
    );
    return () => {
      live = false;
      if (held) cache.release(fileId);
    };
  }, [cache, fileId, want]);
  return load;
}

function ImagePreview({ a, cache }: { a: Attachment; cache: BlobCache }) {
  const box = useRef<HTMLDivElement>(null);
  const near = useNearView(box);
  const load = useFileUrl(cache, a.fileId, near);
  return (
    <div className={`att-image st-${load.state}`} ref={box} data-testid="attachment" data-kind="image" data-file-id={a.fileId} title={fileLabel(a)}>
      {load.state === 'ready' ? (
        <img src={load.url} alt={a.name} data-testid="attachment-image" />
      ) : load.state === 'error' ? (
        <span className="field-err small" data-testid="attachment-error" data-code={load.code}>
          {a.name}: could not load the image ({load.code})
        </span>
      ) : (
        <span className="muted small">Loading {a.name}…</span>
      )}
    </div>
  );
}

function FileChip({ a, cache }: { a: Attachment; cache: BlobCache }) {
  const [want, setWant] = useState(false);
  const load = useFileUrl(cache, a.fileId, want);
  const link = useRef<HTMLAnchorElement>(null);
  const pendingClick = useRef(false);
  // fetched on the first click: then the link has the bytes, and the download starts
  useEffect(() => {
    if (load.state === 'ready' && pendingClick.current) {
      pendingClick.current = false;
      link.current?.click();
    }
  }, [load]);
  const ready = load.state === 'ready';
  return (
    <a
      ref={link}
      className={`file-chip st-${load.state}`}
      data-testid="file-chip"
      data-file-id={a.fileId}
      data-state={load.state}
      href={ready ? load.url : '#'}
      download={a.name}
      aria-busy={load.state === 'loading'}
      title={load.state === 'error' ? `Could not fetch ${a.name} (${load.code}); click to try again` : `Download ${a.name}`}
      onClick={(e) => {
        if (ready) return; // the browser downloads the object URL
        e.preventDefault();
        if (load.state === 'loading') return;
        pendingClick.current = true;
        if (load.state === 'error') {
          // try again: a new acquire
          setWant(false);
          setTimeout(() => setWant(true), 0);
        } else setWant(true);
      }}
    >
      <svg className="file-chip-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
        <path d="M6 2h8l4 4v16H6z M14 2v4h4" fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinejoin="round" />
      </svg>
      <span className="file-name">{a.name}</span>
      <span className="file-size muted"> · {formatSize(a.size)}</span>
      {load.state === 'loading' && <span className="muted small"> (fetching…)</span>}
      {load.state === 'error' && (
        <span className="field-err small" data-testid="attachment-error" data-code={load.code}>
          {' '}
          (failed: {load.code})
        </span>
      )}
    </a>
  );
}

/** A message's files: images previewed, anything else a chip that downloads it. */
export const MessageAttachments = memo(function MessageAttachments({ items, http }: { items: readonly Attachment[]; http: string }) {
  const cache = fileCache(http);
  return (
    <div className="msg-attachments">
      {items.map((a) => (isImage(a.contentType) ? <ImagePreview key={a.fileId} a={a} cache={cache} /> : <FileChip key={a.fileId} a={a} cache={cache} />))}
    </div>
  );
});
