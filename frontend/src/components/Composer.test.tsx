import { fireEvent, render, screen } from '@testing-library/react';
import type { Attachments, PendingFile } from '../hooks/useAttachments';
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

describe('Composer with files', () => {
  const pending = (over: Partial<PendingFile> = {}): PendingFile => ({
    key: 'k1',
    name: 'cat.png',
    contentType: 'image/png',
    size: 2048,
    state: 'uploading',
    loaded: 512,
    fileId: null,
    error: null,
    errorCode: null,
    ...over,
  });
  const filesOf = (list: PendingFile[], over: Partial<Attachments> = {}): Attachments => ({
    files: list,
    busy: list.some((f) => f.state === 'uploading'),
    ready: list.filter((f) => f.state === 'done' && f.fileId).map((f) => ({ fileId: f.fileId!, name: f.name })),
    notice: null,
    add: vi.fn(),
    remove: vi.fn(),
    sent: vi.fn(),
    ...over,
  });

  it('an upload under way shows its progress bar and holds Send back', () => {
    const files = filesOf([pending()]);
    render(<Composer canSend onSend={vi.fn(() => true)} files={files} />);
    const bar = screen.getByRole('progressbar');
    expect(bar.getAttribute('aria-valuenow')).toBe('25');
    expect(screen.getByTestId('pending-file').textContent).toContain('cat.png · 2 KB');
    fireEvent.change(screen.getByTestId('composer'), { target: { value: 'look' } });
    expect((screen.getByTestId('send') as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByTestId('pending-file-remove'));
    expect(files.remove).toHaveBeenCalledWith('k1');
  });

  it('with an uploaded file, Send sends even without words, with the file, and clears the composer', () => {
    const files = filesOf([pending({ state: 'done', fileId: 'f1', loaded: 2048 })]);
    const onSend = vi.fn(() => true);
    render(<Composer canSend onSend={onSend} files={files} />);
    expect(screen.queryByRole('progressbar')).toBeNull();
    const send = screen.getByTestId('send') as HTMLButtonElement;
    fireEvent.change(screen.getByTestId('composer'), { target: { value: '  ' } });
    expect(send.disabled).toBe(false);
    fireEvent.click(send);
    expect(onSend).toHaveBeenCalledWith('', [{ fileId: 'f1', name: 'cat.png' }]);
    expect(files.sent).toHaveBeenCalled();
  });

  it('a failed upload says why and sends nothing by itself', () => {
    const files = filesOf([pending({ state: 'error', error: 'evil.exe: this type of file is not accepted', errorCode: 'unsupported_type', name: 'evil.exe' })]);
    render(<Composer canSend onSend={vi.fn(() => true)} files={files} />);
    expect(screen.getByTestId('upload-error').textContent).toBe('evil.exe: this type of file is not accepted');
    expect(screen.getByTestId('pending-file').dataset.state).toBe('error');
    expect((screen.getByTestId('send') as HTMLButtonElement).disabled).toBe(true);
  });

  it('Attach opens the file picker; what is picked is added', () => {
    const files = filesOf([]);
    render(<Composer canSend onSend={vi.fn(() => true)} files={files} />);
    const input = screen.getByTestId('attach-input') as HTMLInputElement;
    expect(input.type).toBe('file');
    expect(input.multiple).toBe(true);
    const click = vi.spyOn(input, 'click');
    fireEvent.click(screen.getByTestId('attach'));
    expect(click).toHaveBeenCalled();
    const f = new File(['hi'], 'notes.txt', { type: 'text/plain' });
    fireEvent.change(input, { target: { files: [f] } });
    expect(files.add).toHaveBeenCalledWith([f]);
  });

  it('Attach is off with 4 files; the v1 composer has none', () => {
    const four = [1, 2, 3, 4].map((i) => pending({ key: `k${i}`, state: 'done', fileId: `f${i}` }));
    const { unmount } = render(<Composer canSend onSend={vi.fn(() => true)} files={filesOf(four)} />);
    expect((screen.getByTestId('attach') as HTMLButtonElement).disabled).toBe(true);
    unmount();
    render(<Composer canSend onSend={vi.fn(() => true)} />);
    expect(screen.queryByTestId('attach')).toBeNull();
  });
});
