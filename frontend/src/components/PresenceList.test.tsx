import { render, screen } from '@testing-library/react';
import { mergeSnapshot, emptyPresence, type PresenceSnapshot } from '../lib/presence';
import { PresenceList } from './PresenceList';

const me = { userId: 'me', username: 'Me' };
const snap = (n: number, online: number): PresenceSnapshot => ({
  roomId: 'r',
  online,
  users: Array.from({ length: n }, (_, i) => ({ userId: `u${String(i).padStart(4, '0')}`, username: `User ${i}`, since: '' })),
  truncated: online > n,
});

describe('PresenceList', () => {
  it('shows the room count and who beyond the 200 listed is not shown', () => {
    // 1000 listed of 1500 online, self among the unlisted
    render(<PresenceList presence={mergeSnapshot(emptyPresence, snap(1000, 1500), new Set(), me)} selfId="me" />);
    expect(screen.getByTestId('presence-count').textContent).toBe('1,500');
    const names = screen.getAllByTestId('member').map((li) => li.querySelector('.member-name')?.textContent);
    expect(names).toHaveLength(200);
    expect(names[0]).toBe('Me');
    expect(screen.getByTestId('presence-more').textContent).toBe('and 1,300 more');
  });

  it('has no "more" line when everyone is listed', () => {
    render(<PresenceList presence={mergeSnapshot(emptyPresence, snap(2, 3), new Set(), me)} selfId="me" />);
    expect(screen.getByTestId('presence-count').textContent).toBe('3');
    expect(screen.getAllByTestId('member')).toHaveLength(3);
    expect(screen.queryByTestId('presence-more')).toBeNull();
  });
});
