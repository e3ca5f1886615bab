import { fireEvent, render, screen } from '@testing-library/react';
import { useFileDrop } from './useFileDrop';

function Target({ onFiles, enabled = true }: { onFiles: (f: File[]) => void; enabled?: boolean }) {
  const drop = useFileDrop(onFiles, enabled);
  return (
    <div data-testid="target" data-dragging={drop.dragging} {...drop.handlers}>
      <span data-testid="child">inside</span>
    </div>
  );
}
const files = (...f: File[]) => ({ types: ['Files'], files: f, dropEffect: 'none' });

describe('useFileDrop', () => {
  it('is dragging while files are over the element (its children included) and hands over what is dropped', () => {
    const onFiles = vi.fn();
    render(<Target onFiles={onFiles} />);
    const target = screen.getByTestId('target');
    const f = new File(['x'], 'a.txt', { type: 'text/plain' });
    fireEvent.dragEnter(target, { dataTransfer: files(f) });
    fireEvent.dragEnter(screen.getByTestId('child'), { dataTransfer: files(f) });
    fireEvent.dragLeave(target, { dataTransfer: files(f) });
    expect(target.dataset.dragging).toBe('true');
    fireEvent.dragLeave(screen.getByTestId('child'), { dataTransfer: files(f) });
    expect(target.dataset.dragging).toBe('false');
    fireEvent.dragEnter(target, { dataTransfer: files(f) });
    const over = fireEvent.dragOver(target, { dataTransfer: files(f) });
    expect(over).toBe(false); // default prevented: the browser does not open the file
    fireEvent.drop(target, { dataTransfer: files(f) });
    expect(onFiles).toHaveBeenCalledWith([f]);
    expect(target.dataset.dragging).toBe('false');
  });

  it('ignores drags without files, and everything when off', () => {
    const onFiles = vi.fn();
    const { rerender } = render(<Target onFiles={onFiles} />);
    const target = screen.getByTestId('target');
    fireEvent.dragEnter(target, { dataTransfer: { types: ['text/plain'], files: [] } });
    expect(target.dataset.dragging).toBe('false');
    rerender(<Target onFiles={onFiles} enabled={false} />);
    fireEvent.dragEnter(target, { dataTransfer: files(new File(['x'], 'a')) });
    fireEvent.drop(target, { dataTransfer: files(new File(['x'], 'a')) });
    expect(target.dataset.dragging).toBe('false');
    expect(onFiles).not.toHaveBeenCalled();
  });
});
