import type { StatusInfo } from '../lib/chatClient';
import { CLOSE_REASONS } from '../lib/chatClient';

export function ConnIndicator({ info, onRetry }: { info: StatusInfo; onRetry?: () => void }) {
  const { status, retryInMs, lastClose, attempt } = info;
  let detail = '';
  if ((status === 'reconnecting' || status === 'closed') && lastClose) {
    const why = CLOSE_REASONS[lastClose.code] ?? (lastClose.reason || `code ${lastClose.code}`);
    detail = `${why}${retryInMs != null ? ` · retry ${attempt > 1 ? `#${attempt} ` : ''}in ${(retryInMs / 1000).toFixed(1)}s` : ''}`;
  }
  return (
    <div className="conn-wrap" role="status" aria-live="polite">
      <span className={`conn conn-${status}`} title={detail || status}>
        <span className="dot" aria-hidden="true" />
        <span data-testid="conn-status">{status}</span>
      </span>
      {detail && <span className="conn-detail">{detail}</span>}
      {status === 'reconnecting' && onRetry && retryInMs != null && (
        <button type="button" className="btn btn-ghost btn-xs" onClick={onRetry}>
          Retry now
        </button>
      )}
    </div>
  );
}
