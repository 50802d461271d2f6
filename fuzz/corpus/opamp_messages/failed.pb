
“¡²ÃÔ~_Š›.?J[ Çø:?
 9f86d081884c7d659a2feaa0c55ad015Agent exited unexpectedly