;; spin: loops forever (tests fuel and epoch limits on a plain WASI module).
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))
