package runtime

// Shape of the register tile computed by gemmKernel, the portable Go
// micro-kernel, and the unroll of its k loop. The assembly kernels
// (gemm_amd64.go) have tiles of their own; each gemmImpl carries its tile,
// and the packing routines follow it.
const (
	gemmMR = 4 // rows of C per micro-kernel call (packed A panel width)
	gemmNR = 2 // columns of C per micro-kernel call (packed B panel width)
	gemmKU = 4 // k-loop unroll: packed panels are zero-padded to a multiple
)

// gemmGo is the portable implementation: the Go kernel with the Go packers.
// It is what Sgemm runs on architectures without an assembly kernel, under
// the purego build tag, and on amd64 CPUs without AVX2 and FMA.
var gemmGo = &gemmImpl{
	name: "go",
	mr:   gemmMR, nr: gemmNR, ku: gemmKU,
	mc: 128, kc: 256, nc: 2048,
	kernel:     gemmKernelGo,
	packCopy:   gemmPackCopyGo,
	packGather: gemmPackGatherGo,
}

// gemmKernelGo adapts gemmKernel, which only adds full tiles into C, to the
// gemmKernelFunc contract: an edge tile is computed into a full-size
// temporary and its corner copied out, and overwrite clears C first
// (0 + s is s, so this stores the same sum as the assembly kernels would).
func gemmKernelGo(k int, a, b, c []float32, ldc, mr, nr int, overwrite bool) {
	if mr == gemmMR && nr == gemmNR {
		if overwrite {
			for i := 0; i < gemmMR; i++ {
				clear(c[i*ldc : i*ldc+gemmNR])
			}
		}
		gemmKernel(k, a, b, c, ldc)
		return
	}
	var tile [gemmMR * gemmNR]float32
	gemmKernel(k, a, b, tile[:], gemmNR)
	for i := 0; i < mr; i++ {
		row := c[i*ldc : i*ldc+nr]
		for j := range row {
			if overwrite {
				row[j] = tile[i*gemmNR+j]
			} else {
				row[j] += tile[i*gemmNR+j]
			}
		}
	}
}

// gemmKernel is the portable GEMM micro-kernel:
//
//	c[i*ldc+j] += sum over p < kc of a[p*gemmMR+i] * b[p*gemmNR+j]
//
// for i < gemmMR, j < gemmNR, where a and b are packed panels and kc is a
// multiple of gemmKU.
//
// Why it looks like this: Go does not vectorise, so the speed of scalar code
// depends on keeping all gemmMR*gemmNR accumulators in registers (amd64 has
// 15 usable X registers; a 4x4 tile spills and runs ~2x slower), and on the
// loop body being one basic block so that the scheduler keeps source order.
// The array-pointer conversions inside a length-checked loop let the compiler
// drop every bounds check, and the 4-way unroll amortises the loop overhead
// and the register shuffle the allocator inserts on the back edge. 4x2 was
// the fastest of the tiles measured (2x4, 3x3, 5x2, 4x3, 4x4, 6x2, ...).
func gemmKernel(kc int, a, b, c []float32, ldc int) {
	var c00, c01, c10, c11, c20, c21, c30, c31 float32
	var a0, a1, a2, a3, b0, b1 float32
	a = a[:kc*gemmMR]
	b = b[:kc*gemmNR]
	for len(a) >= 8*gemmMR && len(b) >= 8*gemmNR {
		pa := (*[8 * gemmMR]float32)(a)
		pb := (*[8 * gemmNR]float32)(b)
		b0, b1 = pb[0], pb[1]
		a0, a1, a2, a3 = pa[0], pa[1], pa[2], pa[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[2], pb[3]
		a0, a1, a2, a3 = pa[4], pa[5], pa[6], pa[7]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[4], pb[5]
		a0, a1, a2, a3 = pa[8], pa[9], pa[10], pa[11]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[6], pb[7]
		a0, a1, a2, a3 = pa[12], pa[13], pa[14], pa[15]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[8], pb[9]
		a0, a1, a2, a3 = pa[16], pa[17], pa[18], pa[19]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[10], pb[11]
		a0, a1, a2, a3 = pa[20], pa[21], pa[22], pa[23]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[12], pb[13]
		a0, a1, a2, a3 = pa[24], pa[25], pa[26], pa[27]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[14], pb[15]
		a0, a1, a2, a3 = pa[28], pa[29], pa[30], pa[31]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
		a = a[8*gemmMR:]
		b = b[8*gemmNR:]
	}
	if len(a) >= 4*gemmMR && len(b) >= 4*gemmNR {
		pa := (*[4 * gemmMR]float32)(a)
		pb := (*[4 * gemmNR]float32)(b)
		b0, b1 = pb[0], pb[1]
		a0, a1, a2, a3 = pa[0], pa[1], pa[2], pa[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[2], pb[3]
		a0, a1, a2, a3 = pa[4], pa[5], pa[6], pa[7]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[4], pb[5]
		a0, a1, a2, a3 = pa[8], pa[9], pa[10], pa[11]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1

		b0, b1 = pb[6], pb[7]
		a0, a1, a2, a3 = pa[12], pa[13], pa[14], pa[15]
		c00 += a0 * b0
		c01 += a0 * b1
		c10 += a1 * b0
		c11 += a1 * b1
		c20 += a2 * b0
		c21 += a2 * b1
		c30 += a3 * b0
		c31 += a3 * b1
	}
	r := c[:2:2]
	r[0] += c00
	r[1] += c01
	r = c[ldc : ldc+2 : ldc+2]
	r[0] += c10
	r[1] += c11
	r = c[2*ldc : 2*ldc+2 : 2*ldc+2]
	r[0] += c20
	r[1] += c21
	r = c[3*ldc : 3*ldc+2 : 3*ldc+2]
	r[0] += c30
	r[1] += c31
}
