import { fireEvent, render, screen } from '@testing-library/react';
import { Composer } from './Composer';

function setup(canSend = true, onSend = vi.fn(() => true)) {
  render(<Composer canSend={canSend} onSend={onSend} />);
  return { input: screen.getByTestId('composer') as HTMLTextAreaElement, send: screen.getByTestId('send') as HTMLButtonElement, counter: screen.getByTestId('counter'), onSend };
}

describe('Composer', () => {
  it('counts code points and disables send when empty, whitespace or over the limit', () => {
    const { input, send, counter } = setup();
    expect(send.disabled).toBe(true);
    expect(counter.textContent).toBe('0/1000');
    fireEvent.change(input, { target: { value: '   ' } });
    expect(send.disabled).toBe(true);
    fireEvent.change(input, { target: { value: '😀'.repeat(1000) } });
    expect(counter.textContent).toBe('1000/1000');
    expect(send.disabled).toBe(false);
    fireEvent.change(input, { target: { value: '😀'.repeat(1001) } });
    expect(counter.textContent).toBe('1 over the 1000 limit');
    expect(send.disabled).toBe(true);
    expect(input.getAttribute('aria-invalid')).toBe('true');
  });

  it('sends on Enter and clears; Shift+Enter does not send', () => {
    const { input, onSend } = setup();
    fireEvent.change(input, { target: { value: 'hi there' } });
    fireEvent.keyDown(input, { key: 'Enter', shiftKey: true });
    expect(onSend).not.toHaveBeenCalled();
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onSend).toHaveBeenCalledWith('hi there');
    expect(input.value).toBe('');
  });

  it('keeps the draft when sending fails and is disabled while not connected', () => {
    const onSend = vi.fn(() => false);
    const { input, send } = setup(true, onSend);
    fireEvent.change(input, { target: { value: 'draft' } });
    fireEvent.click(send);
    expect(onSend).toHaveBeenCalledTimes(1);
    expect(input.value).toBe('draft');
  });

  it('cannot send while the connection is not open', () => {
    const { input, send, onSend } = setup(false);
    fireEvent.change(input, { target: { value: 'queued?' } });
    expect(send.disabled).toBe(true);
    fireEvent.keyDown(input, { key: 'Enter' });
    expect(onSend).not.toHaveBeenCalled();
  });
});
