// Link types (tcpdump.org/linktypes.html) that tcplens decodes. The capture readers report every
// link type they meet; only these reach the packet decoder, the rest are refused or counted.
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_LINUX_SLL2 = 276;

const supported = new Set([LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2]);

export function isSupportedLinkType(linkType: number): boolean {
  return supported.has(linkType);
}

export const SUPPORTED_LINK_TYPES_TEXT = 'Ethernet (1), raw IP (101, 228, 229), Linux cooked capture (113 SLL, 276 SLL2)';
