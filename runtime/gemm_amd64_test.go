//go:build amd64 && !purego

package runtime

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGemmDispatch checks the CPUID detection against the flags Linux lists
// in /proc/cpuinfo (which also account for the OS enabling the state): on
// this project's build machines, an AVX-512 EPYC, Sgemm must run the AVX-512
// kernel.
func TestGemmDispatch(t *testing.T) {
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip("no /proc/cpuinfo:", err)
	}
	var flags map[string]bool
	for _, line := range strings.Split(string(info), "\n") {
		if name, list, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			flags = map[string]bool{}
			for _, f := range strings.Fields(list) {
				flags[f] = true
			}
			break
		}
	}
	require.NotNil(t, flags, "no flags line in /proc/cpuinfo")
	want := "go"
	switch {
	case flags["avx512f"]:
		want = "avx512"
	case flags["avx2"] && flags["fma"]:
		want = "avx2"
	}
	t.Logf("CPU flags say %s; Sgemm runs %s", want, gemmUse.name)
	require.Equal(t, want, gemmUse.name)
	require.Equal(t, flags["avx512f"], gemmHasAVX512)
	require.Equal(t, flags["avx2"] && flags["fma"], gemmHasAVX2FMA)
}

// TestGemmPackAsmMatchesGo checks the assembly packers against the Go ones
// bit for bit (both compute alpha*x in one rounding), for widths of both
// kernels, k tails of the 8x8 transpose, partial last slivers and more
// slivers than one gemmPackCols pass, and that they write nothing past the
// slivers (nor into the k padding, which gemmPadK owns).
func TestGemmPackAsmMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, w := range []int{6, 8, 16, 32} {
		for _, kc := range []int{1, 5, 8, 13, 64} {
			for _, n := range []int{1, 5, w, w + 3, 2*w + 9, 3 * w, 70 * w} {
				for _, alpha := range []float32{1, -0.75} {
					kcp := kc + 2
					ns := (n + w - 1) / w
					for _, gather := range []bool{false, true} {
						rows, cols := kc, n // copy: a sliver's k step is a source row
						if gather {
							rows, cols = n, kc
						}
						ld := cols + 3
						src := gemmTestMatrix(rng, rows, cols, ld)
						got := make([]float32, ns*kcp*w+5)
						want := make([]float32, len(got))
						for i := range got {
							got[i], want[i] = -7, -7
						}
						if gather {
							gemmPackGatherAsm(got, src, ld, w, n, kc, kcp, alpha)
							gemmPackGatherGo(want, src, ld, w, n, kc, kcp, alpha)
						} else {
							gemmPackCopyAsm(got, src, ld, w, n, kc, kcp, alpha)
							gemmPackCopyGo(want, src, ld, w, n, kc, kcp, alpha)
						}
						require.Equal(t, want, got, "w %d kc %d n %d alpha %v gather %v", w, kc, n, alpha, gather)
						// The Go packer itself: spot-check the layout.
						for j := 0; j < ns*w; j++ {
							for p := 0; p < kcp; p++ {
								v := want[(j/w)*kcp*w+p*w+j%w]
								switch {
								case p >= kc:
									require.Equal(t, float32(-7), v)
								case j >= n:
									require.Equal(t, float32(0), v)
								case gather:
									require.Equal(t, alpha*src[j*ld+p], v)
								default:
									require.Equal(t, alpha*src[p*ld+j], v)
								}
							}
						}
					}
				}
			}
		}
	}
}

// TestGemmConvKernelRows: the kernels that compute 1 to 7 rows of a
// convolution tile give the first rows of the 8-row kernel's result, bit
// for bit, for full and edge tiles, overwriting and accumulating.
func TestGemmConvKernelRows(t *testing.T) {
	if !gemmHasAVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const k, ldc = 13, 40
	a := make([]float32, 8*k)
	b := make([]float32, 64+k*3+32)
	for i := range a {
		a[i] = rng.Float32()*2 - 1
	}
	for i := range b {
		b[i] = rng.Float32()*2 - 1
	}
	offs := make([]int32, k)
	masks := make([]uint32, k)
	for p := range offs {
		offs[p] = int32(3 * p)
		masks[p] = rng.Uint32() | 1
	}
	c0 := make([]float32, 8*ldc)
	for i := range c0 {
		c0[i] = rng.Float32()
	}
	for _, nr := range []int{32, 19} {
		for _, overwrite := range []bool{true, false} {
			want := append([]float32(nil), c0...)
			gemmConvKernel8x32Z(k, &a[0], &b[0], &offs[0], &masks[0], &want[0], ldc, 8, nr, overwrite)
			for mr := 1; mr <= 8; mr++ {
				got := append([]float32(nil), c0...)
				gemmConvKernels[mr](k, &a[0], &b[0], &offs[0], &masks[0], &got[0], ldc, mr, nr, overwrite)
				requireSameBits(t, want[:mr*ldc], got[:mr*ldc], "rows %d nr %d overwrite %v", mr, nr, overwrite)
				requireSameBits(t, c0[mr*ldc:], got[mr*ldc:], "rows %d wrote past its rows", mr)
			}
		}
	}
}

// TestPadRowsZ: padRowsZ writes each row as zeros around the source row,
// for rows narrower and wider than a vector, and nothing past its rows.
func TestPadRowsZ(t *testing.T) {
	if !gemmHasAVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, w := range []int{1, 2, 7, 16, 17, 33} {
		for _, pads := range [][2]int{{0, 0}, {1, 1}, {2, 0}, {0, 3}} {
			const h = 3
			pw := w + pads[0] + pads[1]
			x := make([]float32, h*w)
			for i := range x {
				x[i] = rng.Float32() + 1
			}
			got := make([]float32, h*pw+5)
			for i := range got {
				got[i] = -7
			}
			padRowsZ(&got[0], &x[0], h, w, pw, pads[0])
			want := make([]float32, len(got))
			for i := range want[h*pw:] {
				want[h*pw+i] = -7
			}
			for r := 0; r < h; r++ {
				copy(want[r*pw+pads[0]:], x[r*w:(r+1)*w])
			}
			requireSameBits(t, want, got, "w %d pads %v", w, pads)
		}
	}
}
