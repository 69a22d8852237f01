module example.com/kustomize-svc

go 1.26
