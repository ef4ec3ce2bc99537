package runtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEpilogueApply(t *testing.T) {
	nan := float32(math.NaN())
	x := []float32{-2, -0.5, 0, 0.5, 7, nan}
	y := append([]float32(nil), x...)
	Epilogue{}.Apply(y)
	require.Equal(t, x[:5], y[:5])
	y = append(y[:0], x...)
	Epilogue{Kind: EpilogueRelu}.Apply(y)
	require.Equal(t, []float32{0, 0, 0, 0.5, 7}, y[:5])
	require.True(t, math.IsNaN(float64(y[5])), "Relu keeps NaN")
	y = append(y[:0], x...)
	Epilogue{Kind: EpilogueClip, Min: 0, Max: 6}.Apply(y)
	require.Equal(t, []float32{0, 0, 0, 0.5, 6}, y[:5])
	require.True(t, math.IsNaN(float64(y[5])), "Clip keeps NaN")
	y = append(y[:0], x...)
	Epilogue{Kind: EpilogueClip, Min: -1, Max: 0.25}.applyBias(y, 0.5, true)
	require.Equal(t, []float32{-1, 0, 0.25, 0.25, 0.25}, y[:5])
	require.NoError(t, Epilogue{Kind: EpilogueClip, Min: 2, Max: 2}.Validate())
}
