// An AF_PACKET capture socket with a TPACKET_V3 mmap ring, read from JS without a copy or a call
// per packet: the kernel fills blocks of packets, hands a whole block over (block_status USER),
// we walk its packets in place and give the block back (KERNEL). A socket filter attached before
// bind() decides what reaches the ring. Wake-up as the ring buffer reader: the shared epoll wait
// while idle (V3 wakes us once per retired block), a ~1 ms drain timer while blocks keep coming.
// Every layout (block descriptor, packet header, sockaddr_ll, statistics) is read from the
// running kernel's BTF by field name: no offset is typed here.
import { c, errno, strerror, view, isNull, PROT_READ, PROT_WRITE, MAP_SHARED, MAP_FAILED, type Ptr } from './libbpf.js';
import { kernelBtf } from './btf.js';
import { withNetnsAt } from './netns.js';
import { ReadableWatch } from './epoll-waiter.js';
import { TcplensError } from '../errors.js';

const AF_PACKET = 17, SOCK_RAW = 3, SOCK_NONBLOCK = 0o4000, SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1, SO_ATTACH_BPF = 50, SOL_PACKET = 263;
const PACKET_RX_RING = 5, PACKET_STATISTICS = 6, PACKET_VERSION = 10, TPACKET_V3 = 2;
const ETH_P_ALL = 0x0003;
const TP_STATUS_KERNEL = 0, TP_STATUS_USER = 1, TP_STATUS_VLAN_VALID = 0x10, TP_STATUS_VLAN_TPID_VALID = 0x40;
/** TPACKET_ALIGNMENT in if_packet.h: sockaddr_ll follows the packet header at this alignment. */
const TPACKET_ALIGN = (n: number) => (n + 15) & ~15;
export const PACKET_OUTGOING = 4;
export const ARPHRD_ETHER = 1, ARPHRD_LOOPBACK = 772;

export interface PacketRingOptions {
  /** Interface name; undefined = every interface of the namespace. */
  iface?: string;
  /** A socket filter program fd (SO_ATTACH_BPF), attached before any packet can arrive. */
  filterFd?: number;
  blockSize?: number;
  blockCount?: number;
  /** Longest a partly filled block waits before the kernel hands it over (ms). */
  blockTimeoutMs?: number;
  /** Open the socket inside this network namespace (/run/netns/X, /proc/PID/ns/net). */
  netnsPath?: string;
  drainIntervalMs?: number;
}

/** One captured packet. `data` is a view into the ring: valid only during the handler call. */
export interface RingPacket {
  data: Uint8Array;
  /** length on the wire (data.length is less when a snaplen cut it) */
  origLen: number;
  sec: number;
  nsec: number;
  /** a tag the kernel stripped into metadata (VLAN offload), else null */
  vlanTci: number | null;
  vlanTpid: number;
  ifindex: number;
  hatype: number;
  pktType: number;
}

export type PacketHandler = (p: RingPacket) => void;

export interface PacketRingStats {
  /** packets that passed the filter (PACKET_STATISTICS tp_packets, drops included) */
  packets: number;
  /** packets the kernel dropped because the ring was full */
  drops: number;
  /** times the queue froze (a full ring) */
  freezes: number;
  blocks: number;
  delivered: number;
}

// The kernel hands a block over when it is full OR when the block timeout passes, so under light
// or moderate traffic the ring holds about (blocks x timeout) of time, whatever the block size:
// many smaller blocks give a late reader more slack than a few big ones of the same 16 MiB. With
// 16 x 1 MiB, `http --balance` in the gateway lab dropped packets from 1200 req/s on; with 64 x
// 256 KiB it followed 1542 req/s with none (bench/http/balance-rate.ts).
export const DEFAULT_BLOCK_SIZE = 1 << 18;
export const DEFAULT_BLOCK_COUNT = 64;

interface Layouts {
  req: ReturnType<ReturnType<typeof kernelBtf>['struct']>;
  sll: ReturnType<ReturnType<typeof kernelBtf>['struct']>;
  stats: ReturnType<ReturnType<typeof kernelBtf>['struct']>;
  blockStatus: number; numPkts: number; firstPkt: number;
  hdrSize: number; next: number; sec: number; nsec: number; snaplen: number; len: number; status: number; mac: number;
  vlanTci: number; vlanTpid: number;
  sllIfindex: number; sllHatype: number; sllPktType: number;
}

let layouts: Layouts | null = null;

function kernelLayouts(): Layouts {
  if (layouts) return layouts;
  const btf = kernelBtf();
  const hdr = btf.struct('tpacket3_hdr');
  const sll = btf.struct('sockaddr_ll');
  const bh = (f: string) => btf.offsetOf('tpacket_block_desc', ['hdr', 'bh1', f]).offset;
  const hv = (f: string) => btf.offsetOf('tpacket3_hdr', ['', 'hv1', f]).offset;
  layouts = {
    req: btf.struct('tpacket_req3'), sll, stats: btf.struct('tpacket_stats_v3'),
    blockStatus: bh('block_status'), numPkts: bh('num_pkts'), firstPkt: bh('offset_to_first_pkt'),
    hdrSize: hdr.size, next: hdr.offset('tp_next_offset', 4), sec: hdr.offset('tp_sec', 4), nsec: hdr.offset('tp_nsec', 4),
    snaplen: hdr.offset('tp_snaplen', 4), len: hdr.offset('tp_len', 4), status: hdr.offset('tp_status', 4), mac: hdr.offset('tp_mac', 2),
    vlanTci: hv('tp_vlan_tci'), vlanTpid: hv('tp_vlan_tpid'),
    sllIfindex: sll.offset('sll_ifindex', 4), sllHatype: sll.offset('sll_hatype', 2), sllPktType: sll.offset('sll_pkttype', 1),
  };
  return layouts;
}

function sys(rc: number, what: string, hint: string): number {
  if (rc < 0) throw new TcplensError('TCPLENS_ERR_SYSCALL', `${what}: ${strerror(errno())}`, hint);
  return rc;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class PacketRing {
  readonly stats: PacketRingStats = { packets: 0, drops: 0, freezes: 0, blocks: 0, delivered: 0 };
  private fd: number;
  private ptr: Ptr;
  private readonly ringBytes: number;
  private readonly area: DataView;
  private readonly words: Uint32Array;
  private readonly bytes: Uint8Array;
  private cur = 0;
  private started = false;
  private idle: ReadableWatch | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly L = kernelLayouts();
  private readonly pkt: RingPacket = { data: new Uint8Array(0), origLen: 0, sec: 0, nsec: 0, vlanTci: null, vlanTpid: 0, ifindex: 0, hatype: 0, pktType: 0 };

  private constructor(fd: number, readonly ifindex: number, readonly blockSize: number, readonly blockCount: number,
    private readonly onPacket: PacketHandler, private readonly drainIntervalMs: number) {
    this.fd = fd;
    this.ringBytes = blockSize * blockCount;
    const p = c.mmap(null, this.ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) as Ptr;
    if (isNull(p) || p === MAP_FAILED) {
      const err = errno();
      c.close(fd);
      throw new TcplensError('TCPLENS_ERR_SYSCALL', `mmap of the packet ring (${this.ringBytes} bytes) failed: ${strerror(err)}`, 'give a smaller --block-size or --block-count');
    }
    this.ptr = p;
    const ab = view(p, this.ringBytes);
    this.area = new DataView(ab);
    this.words = new Uint32Array(ab);
    this.bytes = new Uint8Array(ab);
  }

  /** Socket, ring, filter, then bind: nothing unfiltered ever reaches the ring. */
  static open(opts: PacketRingOptions, onPacket: PacketHandler): PacketRing {
    const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
    const blockCount = opts.blockCount ?? DEFAULT_BLOCK_COUNT;
    if (blockSize < 4096 || (blockSize & (blockSize - 1)) !== 0) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--block-size ${blockSize}: a power of two of at least 4096 bytes`, 'e.g. --block-size 1048576');
    }
    if (!Number.isInteger(blockCount) || blockCount < 2) {
      throw new TcplensError('TCPLENS_ERR_BAD_FLAG', `--block-count ${blockCount}: at least 2`, 'e.g. --block-count 16');
    }
    const L = kernelLayouts();
    const make = () => {
      // Protocol 0: the socket receives nothing until bind() names one, after the filter is on.
      const fd = sys(c.socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number, 'cannot open an AF_PACKET socket', 'needs root (CAP_NET_RAW)');
      let ifindex = 0;
      try {
        if (opts.iface !== undefined) {
          ifindex = c.if_nametoindex(opts.iface) as number;
          if (ifindex === 0) {
            throw new TcplensError('TCPLENS_ERR_NO_INTERFACE', `no interface named '${opts.iface}'${opts.netnsPath ? ` in ${opts.netnsPath}` : ''}`, 'list them with: ip -br link');
          }
        }
        sys(c.setsockopt(fd, SOL_PACKET, PACKET_VERSION, u32(TPACKET_V3), 4) as number, 'PACKET_VERSION TPACKET_V3', 'needs Linux >= 3.2');
        const req = L.req.encode({
          tp_block_size: blockSize, tp_block_nr: blockCount,
          // V3 packs packets of any size into a block; frame size/number only have to be consistent.
          tp_frame_size: 2048, tp_frame_nr: (blockSize / 2048) * blockCount,
          tp_retire_blk_tov: opts.blockTimeoutMs ?? 10, tp_sizeof_priv: 0, tp_feature_req_word: 0,
        });
        sys(c.setsockopt(fd, SOL_PACKET, PACKET_RX_RING, req, req.length) as number, `PACKET_RX_RING of ${blockCount} x ${blockSize} bytes`, 'give a smaller --block-size or --block-count');
        if (opts.filterFd !== undefined) {
          sys(c.setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, u32(opts.filterFd), 4) as number, 'SO_ATTACH_BPF on the packet socket', 'needs Linux >= 4.1');
        }
        const addr = L.sll.encode({ sll_family: AF_PACKET, sll_protocol: ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >> 8), sll_ifindex: ifindex });
        sys(c.bind(fd, addr, addr.length) as number, `bind to ${opts.iface ?? 'every interface'}`, 'is the interface up?');
        return { fd, ifindex };
      } catch (e) {
        c.close(fd);
        throw e;
      }
    };
    // A socket belongs to the namespace it was made in, and so does the interface index.
    const { fd, ifindex } = opts.netnsPath ? withNetnsAt(opts.netnsPath, make) : make();
    return new PacketRing(fd, ifindex, blockSize, blockCount, onPacket, opts.drainIntervalMs ?? 1);
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.idle = new ReadableWatch(this.fd, () => this.wake());
    this.step();
  }

  /** Hand every block the kernel has given over to the handler, then back; returns packets seen. */
  drain(): number {
    if (isNull(this.ptr)) return 0;
    const L = this.L, area = this.area, words = this.words, p = this.pkt;
    let n = 0;
    for (let blocks = 0; blocks < this.blockCount; blocks++) {
      const base = this.cur * this.blockSize;
      const statusAt = (base + L.blockStatus) >>> 2;
      if ((Atomics.load(words, statusAt) & TP_STATUS_USER) === 0) break;
      const count = area.getUint32(base + L.numPkts, true);
      let off = base + area.getUint32(base + L.firstPkt, true);
      const sllAt = TPACKET_ALIGN(L.hdrSize);
      try {
        for (let i = 0; i < count; i++) {
          const status = area.getUint32(off + L.status, true);
          const snap = area.getUint32(off + L.snaplen, true);
          const mac = area.getUint16(off + L.mac, true);
          p.data = this.bytes.subarray(off + mac, off + mac + snap);
          p.origLen = area.getUint32(off + L.len, true);
          p.sec = area.getUint32(off + L.sec, true);
          p.nsec = area.getUint32(off + L.nsec, true);
          p.vlanTci = status & TP_STATUS_VLAN_VALID ? area.getUint32(off + L.vlanTci, true) & 0xffff : null;
          p.vlanTpid = status & TP_STATUS_VLAN_TPID_VALID ? area.getUint16(off + L.vlanTpid, true) : 0x8100;
          p.ifindex = area.getInt32(off + sllAt + L.sllIfindex, true);
          p.hatype = area.getUint16(off + sllAt + L.sllHatype, true);
          p.pktType = area.getUint8(off + sllAt + L.sllPktType);
          n++;
          this.onPacket(p);
          off += area.getUint32(off + L.next, true);
        }
      } finally {
        // Also when a handler throws: the block goes back, or the ring would stay full for good.
        Atomics.store(words, statusAt, TP_STATUS_KERNEL);
        this.cur = (this.cur + 1) % this.blockCount;
        this.stats.blocks++;
        this.stats.delivered += n;
      }
    }
    return n;
  }

  /** PACKET_STATISTICS, added up: the kernel resets its counters at each read. */
  readStats(): PacketRingStats {
    if (this.fd < 0) return this.stats;
    const L = this.L;
    const buf = Buffer.alloc(L.stats.size);
    const len = [buf.length];
    if ((c.getsockopt(this.fd, SOL_PACKET, PACKET_STATISTICS, buf, len) as number) === 0) {
      this.stats.packets += buf.readUInt32LE(L.stats.offset('tp_packets', 4));
      this.stats.drops += buf.readUInt32LE(L.stats.offset('tp_drops', 4));
      this.stats.freezes += buf.readUInt32LE(L.stats.offset('tp_freeze_q_cnt', 4));
    }
    return this.stats;
  }

  /** Stop waiting, deliver what the kernel has handed over, read the last statistics, release
   * everything. Prompt even while the shared wait is in epoll_wait (it is woken and left). */
  async close(): Promise<PacketRingStats> {
    if (this.closed) return this.stats;
    this.closed = true;
    await null; // called from a handler: let that drain finish before the ring goes away
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.idle?.close();
    this.drain();
    this.readStats();
    c.munmap(this.ptr, this.ringBytes);
    this.ptr = 0n;
    c.close(this.fd);
    this.fd = -1;
    return this.stats;
  }

  /** The shared waiter saw a block handed over. */
  private wake(): void {
    if (!this.closed) this.step();
  }

  private step(): void {
    this.timer = null;
    if (this.closed) return;
    let got = 0;
    try {
      got = this.drain();
    } finally {
      if (!this.closed) {
        if (got > 0) this.timer = setTimeout(() => this.step(), this.drainIntervalMs);
        else this.idle?.arm();
      }
    }
  }
}
