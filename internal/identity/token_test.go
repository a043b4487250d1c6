package identity

import "testing"

func TestNewToken(t *testing.T) {
	a, ha := NewToken()
	b, hb := NewToken()
	if a == b || ha == hb {
		t.Fatal("two tokens are equal")
	}
	if err := Check(a); err != nil {
		t.Errorf("Check(new token) = %v", err)
	}
	if Hash(a) != ha || len(ha) != 64 {
		t.Errorf("Hash mismatch")
	}
	for _, bad := range []string{"", "wdn_", "wdn_short", "xyz_" + a[4:], a + "x", "wdn_" + string(make([]byte, 43))} {
		if Check(bad) == nil {
			t.Errorf("Check(%q) accepted", bad)
		}
	}
}
