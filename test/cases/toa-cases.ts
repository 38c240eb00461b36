// TOA option byte strings and what every parser (TS codec, kernel toa_parse) must make of them.
// Includes the hostile ones: silly lengths, partial options, EOL before the TOA, wrong lengths.
export interface ToaCase {
  name: string;
  opts: number[];
  /** conflict: two TOAs; kind..addr then describe the FIRST one */
  status: 'none' | 'found' | 'malformed' | 'conflict';
  kind?: number;
  len?: number;
  family?: 4 | 6;
  port?: number;
  addr?: string;
}

const v6 = [0xfd, 0x00, 0, 0x31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];

export const toaCases: ToaCase[] = [
  { name: 'the issue example 254/8 (10.5.12.70:37325)', opts: [0xfe, 0x08, 0x91, 0xcd, 0x0a, 0x05, 0x0c, 0x46], status: 'found', kind: 254, len: 8, family: 4, port: 37325, addr: '10.5.12.70' },
  { name: '254/8 after NOP padding and a timestamp', opts: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 254, 8, 0, 80, 192, 168, 1, 9], status: 'found', kind: 254, len: 8, family: 4, port: 80, addr: '192.168.1.9' },
  { name: '253/20 IPv6', opts: [253, 20, 0x1f, 0x90, ...v6], status: 'found', kind: 253, len: 20, family: 6, port: 8080, addr: 'fd00:31::1234' },
  { name: '254/20 IPv6', opts: [1, 1, 254, 20, 0x00, 0x35, ...v6], status: 'found', kind: 254, len: 20, family: 6, port: 53, addr: 'fd00:31::1234' },
  { name: 'no options at all', opts: [], status: 'none' },
  { name: 'only NOPs and a timestamp', opts: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], status: 'none' },
  { name: 'EOL before the TOA hides it', opts: [1, 0, 254, 8, 0, 80, 10, 0, 0, 1], status: 'none' },
  { name: 'opsize < 2 (silly option) stops the walk', opts: [8, 1, 254, 8, 0, 80, 10, 0, 0, 1], status: 'malformed' },
  { name: 'opsize 0', opts: [254, 0, 0, 80, 10, 0, 0, 1], status: 'malformed' },
  { name: 'partial TOA: length runs past the options', opts: [1, 1, 254, 8, 0, 80, 10, 0], status: 'malformed' },
  { name: 'length byte missing at the end', opts: [1, 1, 1, 254], status: 'malformed' },
  { name: 'TOA kind with a wrong length (254/7)', opts: [254, 7, 0, 80, 10, 0, 0, 1, 0, 0, 0, 0], status: 'malformed' },
  { name: 'experimental 254/4 (not a TOA) then a real TOA', opts: [254, 4, 0xf9, 0x89, 254, 8, 0x01, 0xbb, 172, 16, 0, 1], status: 'found', kind: 254, len: 8, family: 4, port: 443, addr: '172.16.0.1' },
  { name: 'unknown kind 200/8 is skipped without the dialect', opts: [200, 8, 0, 80, 10, 0, 0, 1], status: 'none' },
  { name: 'SACK-permitted, window scale, MSS, then TOA at the very end', opts: [2, 4, 5, 0xb4, 4, 2, 1, 3, 3, 7, 1, 1, 254, 8, 0, 22, 10, 9, 8, 7], status: 'found', kind: 254, len: 8, family: 4, port: 22, addr: '10.9.8.7' },
  { name: 'forty bytes of NOPs', opts: Array(40).fill(1), status: 'none' },
  { name: 'length 255 (hostile)', opts: [254, 255, 0, 80, 10, 0, 0, 1], status: 'malformed' },
  // A client writes its own 254/8; the balancer adds its TOA. Whichever comes first, two is a conflict.
  { name: 'two TOAs: the balancer first (LVS/DPVS order), the client\'s forgery after', opts: [254, 8, 0x01, 0xbb, 10, 5, 12, 70, 1, 1, 254, 8, 0x30, 0x39, 6, 6, 6, 6], status: 'conflict', kind: 254, len: 8, family: 4, port: 443, addr: '10.5.12.70' },
  { name: 'two TOAs: the client\'s forgery first, the appended balancer TOA after', opts: [2, 4, 5, 0xb4, 254, 8, 0x30, 0x39, 6, 6, 6, 6, 254, 8, 0x01, 0xbb, 10, 5, 12, 70], status: 'conflict', kind: 254, len: 8, family: 4, port: 12345, addr: '6.6.6.6' },
  { name: 'two TOAs of different dialects (254/8 and 253/20)', opts: [254, 8, 0, 80, 10, 0, 0, 1, 253, 20, 0x1f, 0x90, ...v6], status: 'conflict', kind: 254, len: 8, family: 4, port: 80, addr: '10.0.0.1' },
  { name: 'a TOA then a cut-short option: the TOA stands', opts: [254, 8, 0, 80, 10, 0, 0, 1, 8, 10, 0, 0], status: 'found', kind: 254, len: 8, family: 4, port: 80, addr: '10.0.0.1' },
  { name: 'a TOA then a TOA kind of another length (an experiment, 254/4): no conflict', opts: [254, 8, 0, 80, 10, 0, 0, 1, 254, 4, 0xf9, 0x89], status: 'found', kind: 254, len: 8, family: 4, port: 80, addr: '10.0.0.1' },
];
