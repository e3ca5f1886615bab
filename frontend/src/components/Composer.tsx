import { useEffect, useId, useRef, useState } from 'react';
import { checkContent, MAX_CONTENT_CODE_POINTS } from '../lib/text';

export interface ComposerProps {
  canSend: boolean;
  onSend: (content: string) => boolean;
  max?: number;
  /** The text changed (v2: typing indicators). */
  onTextChange?: (text: string) => void;
  onBlur?: () => void;
}

export function Composer({ canSend, onSend, max = MAX_CONTENT_CODE_POINTS, onTextChange, onBlur }: ComposerProps) {
  const [text, setText] = useState('');
  const id = useId();
  const ref = useRef<HTMLTextAreaElement>(null);
  // Put the caret in the composer once connected (not on touch screens, where it would pop the keyboard).
  useEffect(() => {
    if (canSend && ref.current && document.activeElement === document.body && window.matchMedia?.('(pointer: fine)').matches) ref.current.focus();
  }, [canSend]);
  const check = checkContent(text, max);
  const enabled = canSend && check.ok;

  const submit = () => {
    if (!enabled) return;
    if (onSend(text)) setText('');
  };

  const counterClass = check.count > max ? 'counter over' : check.remaining <= 100 ? 'counter near' : 'counter';
  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
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
        <button type="submit" className="btn btn-primary" data-testid="send" disabled={!enabled}>
          Send
        </button>
      </div>
    </form>
  );
}
