import { hueFor, initials } from '../lib/text';

export function Avatar({ id, name, size = 32 }: { id: string; name: string; size?: number }) {
  const h = hueFor(id);
  return (
    <span
      className="avatar"
      aria-hidden="true"
      style={{ width: size, height: size, fontSize: size * 0.4, background: `hsl(${h} 55% 32%)`, color: `hsl(${h} 90% 88%)` }}
    >
      {initials(name)}
    </span>
  );
}
