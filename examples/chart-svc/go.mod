module example.com/chart-svc

go 1.26
