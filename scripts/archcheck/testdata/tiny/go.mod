module example.com/tiny

go 1.22

require example.com/ext v0.0.0

replace example.com/ext => ../ext
