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
