module nextcandle.local/standin

go 1.24
