package fsm

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCoerceWidensAnIntLiteralToFloatOnly(t *testing.T) {
	v, err := coerce(Int(3), KindFloat)
	require.NoError(t, err)
	require.Equal(t, Float(3), v)

	v, err = coerce(String("x"), KindString)
	require.NoError(t, err)
	require.Equal(t, String("x"), v)

	for _, c := range []struct {
		v Value
		k Kind
	}{
		{Float(3), KindInt}, {Int(1), KindBool}, {Bool(true), KindInt}, {String("1"), KindInt}, {Int(1), KindString},
	} {
		_, err := coerce(c.v, c.k)
		require.ErrorIs(t, err, ErrTypeMismatch)
		require.Equal(t, CodeTypeMismatch, Code(err))
	}
}

func TestNegativeZeroHashesLikeZero(t *testing.T) {
	negZero := Float(math.Copysign(0, -1))
	require.Equal(t, Float(0), negZero, "-0 and +0 are one Value")
	require.Equal(t, elementHash(Float(0)), elementHash(negZero))
	require.NotEqual(t, elementHash(Float(0)), elementHash(Int(0)))
	require.NotEqual(t, elementHash(Float(1)), elementHash(Float(-1)))
}
