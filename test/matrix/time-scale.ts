// Wall-clock limits in kernel tests are for real hardware; in a kernel matrix guest (qemu TCG)
// node runs 7-17x slower and spawning a process ~30x, so such limits stretch by this factor.
export const TIME_SCALE = process.env.TCPLENS_MATRIX_KERNEL ? 15 : 1;
