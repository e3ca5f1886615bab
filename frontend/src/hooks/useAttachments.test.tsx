import { act, renderHook } from '@testing-library/react';
import { UploadError, type UploadedFile, type UploadOptions } from '../lib/uploads';
import { percentOf, useAttachments, type Uploader } from './useAttachments';

/** An uploader whose uploads finish when the test says. */
function scripted() {
  const calls: { http: string; roomId: string; file: File; o: UploadOptions; resolve: (v: UploadedFile) => void; reject: (e: unknown) => void }[] = [];
  const upload: Uploader = (http, roomId, file, o) =>
    new Promise((resolve, reject) => {
      calls.push({ http, roomId, file, o, resolve, reject });
    });
  return { upload, calls };
}
const file = (name: string, bytes = 100, type = 'image/png') => new File([new Uint8Array(bytes)], name, { type });

describe('useAttachments', () => {
  it('uploads each file when added, with its progress, and lists the uploaded ones for the message', async () => {
    const { upload, calls } = scripted();
    const { result } = renderHook(() => useAttachments('http://h', 'r', upload));
    act(() => result.current.add([file('a.png'), file('b.txt', 50, 'text/plain')]));
    expect(calls.map((c) => [c.http, c.roomId, c.file.name])).toEqual([
      ['http://h', 'r', 'a.png'],
      ['http://h', 'r', 'b.txt'],
    ]);
    expect(result.current.files.map((f) => [f.name, f.state, f.size])).toEqual([
      ['a.png', 'uploading', 100],
      ['b.txt', 'uploading', 50],
    ]);
    expect(result.current.busy).toBe(true);
    act(() => calls[0].o.onProgress?.(40, 100));
    expect(percentOf(result.current.files[0])).toBe(40);
    await act(async () => calls[0].resolve({ fileId: 'fa', size: 100 }));
    expect(result.current.files[0]).toMatchObject({ state: 'done', fileId: 'fa' });
    expect(result.current.ready).toEqual([{ fileId: 'fa', name: 'a.png' }]);
    expect(result.current.busy).toBe(true);
    await act(async () => calls[1].resolve({ fileId: 'fb', size: 50 }));
    expect(result.current.busy).toBe(false);
    expect(result.current.ready.map((r) => r.fileId)).toEqual(['fa', 'fb']);
    act(() => result.current.sent());
    expect(result.current.files).toEqual([]);
  });

  it('a refused upload shows what went wrong and is not part of the message', async () => {
    const { upload, calls } = scripted();
    const { result } = renderHook(() => useAttachments('', 'r', upload));
    act(() => result.current.add([file('evil.exe', 10, 'application/x-msdownload')]));
    await act(async () => calls[0].reject(new UploadError('unsupported_type', 'no', 415)));
    expect(result.current.files[0]).toMatchObject({ state: 'error', errorCode: 'unsupported_type', error: 'evil.exe: this type of file is not accepted' });
    expect(result.current.ready).toEqual([]);
    expect(result.current.busy).toBe(false);
  });

  it('takes at most 4 files per message (failed ones do not count) and says which were not added', async () => {
    const { upload, calls } = scripted();
    const { result } = renderHook(() => useAttachments('', 'r', upload));
    act(() => result.current.add([file('1'), file('2'), file('3')]));
    await act(async () => calls[2].reject(new UploadError('file_too_large', 'big', 413)));
    act(() => result.current.add([file('4'), file('5'), file('6')]));
    expect(calls.map((c) => c.file.name)).toEqual(['1', '2', '3', '4', '5']);
    expect(result.current.notice).toBe('At most 4 files per message: 6 not added.');
  });

  it('remove cancels an upload under way; another room cancels everything and starts empty', async () => {
    const { upload, calls } = scripted();
    const { result, rerender } = renderHook(({ room }) => useAttachments('', room, upload), { initialProps: { room: 'r' } });
    act(() => result.current.add([file('a'), file('b')]));
    act(() => result.current.remove(result.current.files[0].key));
    expect(calls[0].o.signal?.aborted).toBe(true);
    expect(result.current.files.map((f) => f.name)).toEqual(['b']);
    // a cancelled upload that settles later changes nothing
    await act(async () => calls[0].resolve({ fileId: 'late', size: 1 }));
    expect(result.current.ready).toEqual([]);
    rerender({ room: 'other' });
    expect(calls[1].o.signal?.aborted).toBe(true);
    expect(result.current.files).toEqual([]);
    act(() => result.current.add([file('c')]));
    expect(calls[2].roomId).toBe('other');
  });

  it('adds nothing without a room', () => {
    const { upload, calls } = scripted();
    const { result } = renderHook(() => useAttachments('', null, upload));
    act(() => result.current.add([file('a')]));
    expect(calls).toEqual([]);
    expect(result.current.files).toEqual([]);
  });
});
